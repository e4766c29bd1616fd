// One YAML document → a ManifestObject, or diagnostics that name the field and point at the node.
// The shape is checked by schemas/manifests.schema.json (one validator per kind, so that a Pod's
// errors are about a Pod); what a schema cannot say (selectors matching labels, names unique in a
// pod, mounts naming volumes) is checked here once the shape is right.
import type { V1Deployment, V1Pod, V1PodSpec } from "@kubernetes/client-node";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import schema from "../../schemas/manifests.schema.json";
import type { Diagnostic, ManifestBody, ManifestKind, ManifestObject, ObjectKey } from "../types";
import type { JsonPath, YamlDocument } from "./positions";

export interface ValidationResult {
  /** Set only when there is no diagnostic. */
  object?: ManifestObject;
  diagnostics: Diagnostic[];
}

export const DEFAULT_NAMESPACE = "default";

const KINDS: ReadonlyArray<{ apiVersion: string; kind: ManifestKind }> = [
  { apiVersion: "v1", kind: "Pod" },
  { apiVersion: "v1", kind: "ConfigMap" },
  { apiVersion: "apps/v1", kind: "Deployment" },
];
const SUPPORTED = KINDS.map((k) => `${k.apiVersion} ${k.kind}`).join(", ");

export function validateDocument(doc: YamlDocument): ValidationResult {
  const value = doc.value;
  if (!isMapping(value)) {
    return { diagnostics: [{ ...doc.start, field: "", message: `a manifest must be a mapping with apiVersion, kind and metadata, not ${describeValue(value)}` }] };
  }
  const head = headerDiagnostics(doc, value);
  if (head.length > 0) return { diagnostics: head };
  const kind = value.kind as ManifestKind;
  const key = objectKey(kind, value);
  const validate = validatorFor(kind);
  const diagnostics = validate(value) ? semanticDiagnostics(kind, value as unknown as ManifestBody, doc) : schemaDiagnostics(validate.errors ?? [], doc);
  if (diagnostics.length > 0) return { diagnostics: diagnostics.map((d) => (key ? { ...d, object: key } : d)) };
  // `status` is accepted so that `kubectl get -o yaml` output loads, and dropped: it is not desired state.
  const { status: _status, ...body } = value;
  return { object: { key: key!, source: doc.start, body: body as unknown as ManifestBody }, diagnostics: [] };
}

/** apiVersion and kind first: they choose the schema, and without them nothing else makes sense. */
function headerDiagnostics(doc: YamlDocument, value: Record<string, unknown>): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const field of ["apiVersion", "kind"]) {
    if (!(field in value)) out.push({ ...doc.start, field, message: "is required" });
    else if (typeof value[field] !== "string") out.push({ ...doc.positionOf([field]), field, message: "must be a string" });
  }
  if (out.length > 0) return out;
  if (!KINDS.some((k) => k.apiVersion === value.apiVersion && k.kind === value.kind)) {
    const message = `kind ${String(value.kind)} (apiVersion ${String(value.apiVersion)}) is not supported: berth reads ${SUPPORTED}`;
    out.push({ ...doc.positionOf(["kind"]), field: "kind", message });
  }
  return out;
}

function objectKey(kind: ManifestKind, value: Record<string, unknown>): ObjectKey | undefined {
  const meta = value.metadata;
  if (!isMapping(meta) || typeof meta.name !== "string") return undefined;
  return { kind, namespace: typeof meta.namespace === "string" ? meta.namespace : DEFAULT_NAMESPACE, name: meta.name };
}

let validators: Map<ManifestKind, ValidateFunction> | undefined;

function validatorFor(kind: ManifestKind): ValidateFunction {
  if (!validators) {
    // verbose: errors carry their schema, whose `mustBe` annotation words the message.
    const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true, keywords: ["mustBe"] });
    ajv.addSchema(schema);
    validators = new Map();
    for (const k of KINDS) {
      const fn = ajv.getSchema(`${schema.$id}#/definitions/${k.kind}`);
      if (!fn) throw new Error(`schemas/manifests.schema.json has no definitions/${k.kind}`);
      validators.set(k.kind, fn);
    }
  }
  return validators.get(kind)!;
}

// Keywords about a value itself: one message per value is enough (a string too long and off-pattern
// is one mistake).
const VALUE_KEYWORDS = new Set(["type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "format", "not"]);

function schemaDiagnostics(errors: ErrorObject[], doc: YamlDocument): Diagnostic[] {
  // A failed oneOf/anyOf reports every branch's failure before its own; the branches are how the
  // schema spells "exactly one of", not problems of their own.
  const composites = errors.filter((e) => e.keyword === "oneOf" || e.keyword === "anyOf");
  const insideComposite = (e: ErrorObject) => composites.some((c) => c !== e && within(e.instancePath, c.instancePath) && e.schemaPath.startsWith(`${c.schemaPath}/`));
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  const valueErrorAt = new Set<string>();
  for (const e of errors) {
    // "must match then schema" and "property name must be valid" restate the errors beside them.
    if (e.keyword === "if" || e.keyword === "propertyNames" || insideComposite(e)) continue;
    if (VALUE_KEYWORDS.has(e.keyword) && e.propertyName === undefined) {
      if (valueErrorAt.has(e.instancePath)) continue;
      valueErrorAt.add(e.instancePath);
    }
    const d = describe(e, doc);
    const id = `${d.field}\u0000${d.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(d);
  }
  return out.sort((a, b) => a.line - b.line || a.column - b.column);
}

function within(pointer: string, ancestor: string): boolean {
  return pointer === ancestor || pointer.startsWith(`${ancestor}/`);
}

function describe(e: ErrorObject, doc: YamlDocument): Diagnostic {
  const path = pointerToPath(e.instancePath, doc.value);
  const at = (p: JsonPath, key = false) => (key ? doc.keyPositionOf(p) : doc.positionOf(p));
  if (e.propertyName !== undefined) {
    // Inside propertyNames: the key itself is wrong.
    const p = [...path, e.propertyName];
    return { ...at(p, true), field: formatField(p), message: valueMessage(e) };
  }
  switch (e.keyword) {
    case "required": {
      const p = [...path, String(e.params.missingProperty)];
      // The mapping that lacks the field is where to add it.
      return { ...at(path, true), field: formatField(p), message: "is required" };
    }
    case "additionalProperties": {
      const name = String(e.params.additionalProperty);
      const p = [...path, name];
      const known = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
      const guess = closest(name, known);
      return { ...at(p, true), field: formatField(p), message: `is not supported by berth${guess ? ` (did you mean ${guess}?)` : ""}` };
    }
    case "oneOf":
    case "not":
      // "exactly one of" and "not both" are about the mapping as a whole: point at its key.
      return { ...at(path, true), field: formatField(path), message: valueMessage(e) };
    default:
      return { ...at(path), field: formatField(path), message: valueMessage(e) };
  }
}

const TYPE_NAMES: Record<string, string> = { integer: "a whole number", number: "a number", string: "a string", boolean: "true or false", object: "a mapping", array: "a list", null: "null" };

function valueMessage(e: ErrorObject): string {
  const mustBe = e.parentSchema?.mustBe;
  if (typeof mustBe === "string" && VALUE_KEYWORDS.has(e.keyword) && e.keyword !== "not") return `must be ${mustBe}`;
  const p = e.params;
  switch (e.keyword) {
    case "type":
      return `must be ${String(p.type)
        .split(",")
        .map((t) => TYPE_NAMES[t] ?? t)
        .join(" or ")}`;
    case "enum":
      return `must be one of ${(p.allowedValues as unknown[]).map(showValue).join(", ")}`;
    case "const":
      return `must be ${showValue(p.allowedValue)}`;
    case "minimum":
      return `must be at least ${p.limit}`;
    case "maximum":
      return `must be at most ${p.limit}`;
    case "minLength":
      return p.limit === 1 ? "must not be empty" : `must be at least ${p.limit} characters long`;
    case "maxLength":
      return `must be at most ${p.limit} characters long`;
    case "minItems":
      return p.limit === 1 ? "must list at least one item" : `must list at least ${p.limit} items`;
    case "minProperties":
      return "must not be empty";
    case "oneOf": {
      const keys = requiredBranches(e.schema);
      return keys ? `must set exactly one of ${keys.join(", ")}` : "must match exactly one of its allowed forms";
    }
    case "not": {
      const keys = (e.schema as { required?: string[] } | undefined)?.required;
      return keys ? `must not set both ${keys.join(" and ")}` : "is not allowed";
    }
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

/** For `oneOf: [{required: [a]}, {required: [b]}]`, the field names a, b. */
function requiredBranches(branches: unknown): string[] | undefined {
  if (!Array.isArray(branches)) return undefined;
  const keys: string[] = [];
  for (const b of branches) {
    const r = (b as { required?: unknown }).required;
    if (!Array.isArray(r) || r.length !== 1 || Object.keys(b as object).length !== 1) return undefined;
    keys.push(String(r[0]));
  }
  return keys;
}

/** Semantic rules, on a body the schema accepted. */
function semanticDiagnostics(kind: ManifestKind, body: ManifestBody, doc: YamlDocument): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (kind === "Pod") podSpecDiagnostics((body as V1Pod).spec!, ["spec"], doc, out);
  if (kind === "Deployment") {
    const spec = (body as V1Deployment).spec!;
    selectorDiagnostics(spec.selector.matchLabels ?? {}, spec.template.metadata?.labels ?? {}, doc, out);
    podSpecDiagnostics(spec.template.spec!, ["spec", "template", "spec"], doc, out);
  }
  return out;
}

function selectorDiagnostics(matchLabels: Record<string, string>, labels: Record<string, string>, doc: YamlDocument, out: Diagnostic[]) {
  // A Deployment whose selector misses its own pods would create pods forever; Kubernetes refuses it too.
  const missing = Object.entries(matchLabels).filter(([k, v]) => labels[k] !== v);
  if (missing.length === 0) return;
  const pairs = missing.map(([k, v]) => `${k}=${v}`).join(", ");
  const path = ["spec", "selector", "matchLabels"];
  out.push({ ...doc.keyPositionOf(path), field: formatField(path), message: `selects ${pairs}, which spec.template.metadata.labels does not have: the Deployment would not select its own pods` });
}

function podSpecDiagnostics(spec: V1PodSpec, at: JsonPath, doc: YamlDocument, out: Diagnostic[]) {
  const volumes = new Map<string, JsonPath>();
  (spec.volumes ?? []).forEach((v, i) => {
    const p = [...at, "volumes", i, "name"];
    const first = volumes.get(v.name);
    if (first) out.push({ ...doc.positionOf(p), field: formatField(p), message: `duplicate volume name ${v.name} (also ${formatField(first)})` });
    else volumes.set(v.name, p);
  });
  const containers = new Map<string, JsonPath>();
  for (const list of ["initContainers", "containers"] as const) {
    (spec[list] ?? []).forEach((c, i) => {
      const p = [...at, list, i, "name"];
      const first = containers.get(c.name);
      // Container names key logs, status and exec; init containers share the namespace.
      if (first) out.push({ ...doc.positionOf(p), field: formatField(p), message: `duplicate container name ${c.name} (also ${formatField(first)})` });
      else containers.set(c.name, p);
      (c.volumeMounts ?? []).forEach((m, j) => {
        if (volumes.has(m.name)) return;
        const mp = [...at, list, i, "volumeMounts", j, "name"];
        out.push({ ...doc.positionOf(mp), field: formatField(mp), message: `no volume named ${m.name} in ${formatField([...at, "volumes"])}` });
      });
    });
  }
}

/** `/spec/containers/0/image` → ["spec", "containers", 0, "image"], numbers where the value is a list. */
function pointerToPath(pointer: string, value: unknown): JsonPath {
  if (pointer === "") return [];
  const path: Array<string | number> = [];
  let node = value;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node)) {
      path.push(Number(seg));
      node = node[Number(seg)];
    } else {
      path.push(seg);
      node = isMapping(node) ? node[seg] : undefined;
    }
  }
  return path;
}

/** ["spec", "containers", 0, "image"] → `spec.containers[0].image`; odd keys quoted: `labels["app.kubernetes.io/name"]`. */
export function formatField(path: JsonPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The known field a typo most likely meant: same letters ignoring case, or at most two edits away. */
function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(k, name);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return "a string";
  return typeof v === "object" ? String(v) : `a ${typeof v}`;
}

function showValue(v: unknown): string {
  return typeof v === "string" && /^[A-Za-z0-9/._-]+$/.test(v) ? v : JSON.stringify(v);
}
