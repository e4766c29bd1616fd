// A container's environment as kubelet computes it: envFrom entries in order, then env entries,
// later ones overriding; ConfigMap references resolved from the folder; $(VAR) expanded from the
// variables defined before it (kubelet's expansion.Expand, $$ escaping included).
import type { V1ConfigMap, V1Container } from "@kubernetes/client-node";
import { InvalidArgumentError } from "../../runtime/errors";

export type ConfigMapLookup = (namespace: string, name: string) => V1ConfigMap | undefined;

/** Kubernetes' C identifier-ish rule for env names taken from a ConfigMap's keys. */
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export function resolveEnv(c: V1Container, namespace: string, field: string, lookup: ConfigMapLookup): Array<{ key: string; value: string }> {
  const env = new Map<string, string>();
  (c.envFrom ?? []).forEach((from, i) => {
    const ref = from.configMapRef;
    if (!ref) return;
    const cm = lookup(namespace, ref.name!);
    if (!cm) {
      if (ref.optional) return;
      throw new InvalidArgumentError(`${field}.envFrom[${i}].configMapRef: ConfigMap ${namespace}/${ref.name} is not defined in the folder`);
    }
    for (const [k, v] of Object.entries(cm.data ?? {})) {
      const name = `${from.prefix ?? ""}${k}`;
      // kubelet skips keys that are not valid variable names (and says so in an event).
      if (ENV_NAME.test(name)) env.set(name, v);
    }
  });
  (c.env ?? []).forEach((e, i) => {
    if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      const cm = lookup(namespace, ref.name!);
      const value = cm?.data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) return;
        const what = cm ? `has no key "${ref.key}"` : "is not defined in the folder";
        throw new InvalidArgumentError(`${field}.env[${i}].valueFrom.configMapKeyRef: ConfigMap ${namespace}/${ref.name} ${what}`);
      }
      env.set(e.name, value);
      return;
    }
    env.set(e.name, expand(e.value ?? "", (n) => env.get(n)));
  });
  return [...env].map(([key, value]) => ({ key, value }));
}

/** Expands $(NAME) from `lookup`; unknown names stay as written, $$ is a literal $. */
export function expand(s: string, lookup: (name: string) => string | undefined): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "$" || i + 1 >= s.length) {
      out += s[i];
      continue;
    }
    const next = s[i + 1];
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "(") {
      const end = s.indexOf(")", i + 2);
      if (end === -1) {
        out += s.slice(i);
        break;
      }
      const name = s.slice(i + 2, end);
      const v = lookup(name);
      out += v ?? `$(${name})`;
      i = end;
    } else out += "$";
  }
  return out;
}
