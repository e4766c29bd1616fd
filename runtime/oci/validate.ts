// config.json is checked against the OCI runtime-spec v1.3 JSON Schema before anything is
// created, so a bad bundle fails with the path of the first problem and leaves nothing behind.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ErrorObject } from "ajv";
import { InvalidArgumentError } from "../errors";
import { CAPABILITY_NAMES } from "../security/capabilities";
import type { Spec } from "./spec-types";

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
let validator: Validator | undefined;

/**
 * The bundle carries the validator precompiled (bin/build.mjs generates "berth:oci-config-validator"
 * with ajv's standalone code); without a build (tsx) there is no such module and ajv compiles the
 * same schemas here.
 */
async function compile(): Promise<Validator> {
  if (validator) return validator;
  try {
    validator = (await import("berth:oci-config-validator")).default as Validator;
  } catch {
    validator = (await import("./validate-compile")).compileConfigValidator() as Validator;
  }
  return validator;
}

function describe(err: ErrorObject): string {
  const where = err.instancePath || "/";
  const extra = "additionalProperty" in err.params ? ` "${String(err.params.additionalProperty)}"` : "allowedValues" in err.params ? ` (${(err.params.allowedValues as unknown[]).join(", ")})` : "";
  return `${where} ${err.message ?? "is invalid"}${extra}`;
}

/**
 * What the schema sees: containerd's CRI writes rootfsPropagation as "rslave" and runc accepts the
 * recursive names, which the 1.3 schema's enum does not list; they are checked as their base name.
 */
function schemaView(spec: unknown): unknown {
  const linux = (spec as { linux?: { rootfsPropagation?: unknown } } | null)?.linux;
  const p = linux?.rootfsPropagation;
  if (typeof p !== "string" || !/^r(private|shared|slave|unbindable)$/.test(p)) return spec;
  return { ...(spec as object), linux: { ...linux, rootfsPropagation: p.slice(1) } };
}

/** Checks a parsed config against the schema and the rules the schema cannot say. */
export async function validateSpec(spec: unknown, where: string): Promise<Spec> {
  const validate = await compile();
  if (!validate(schemaView(spec))) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: ${describe(validate.errors![0]!)}`);
  const s = spec as Spec;
  if (!s.root?.path) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /root/path is required on Linux`);
  if (!s.process) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /process is required to create a container`);
  if (!s.process.args?.length && !s.process.commandLine) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /process/args must name a program`);
  if (!s.process.cwd.startsWith("/")) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /process/cwd "${s.process.cwd}" must be absolute`);
  for (const [i, m] of (s.mounts ?? []).entries()) {
    if (!m.destination.startsWith("/")) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /mounts/${i}/destination "${m.destination}" must be absolute`);
  }
  // Checked here, before anything is made, rather than half-way through the init. runc 1.1 warns
  // and drops a name it does not know; berth refuses it, since a typo would silently cost a capability.
  const known = new Set<string>(CAPABILITY_NAMES);
  for (const [set, names] of Object.entries(s.process.capabilities ?? {})) {
    for (const [i, name] of (names as string[]).entries()) {
      if (!known.has(name)) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /process/capabilities/${set}/${i} "${name}" is not a known capability`);
    }
  }
  const seen = new Set<string>();
  for (const ns of s.linux?.namespaces ?? []) {
    if (seen.has(ns.type)) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: namespace "${ns.type}" is listed twice`);
    seen.add(ns.type);
  }
  return s;
}

/** config.json of a bundle, parsed but not yet checked. */
export function readSpec(bundle: string): { parsed: unknown; file: string } {
  const file = join(bundle, "config.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return { parsed: JSON.parse(text), file };
  } catch (err) {
    throw new InvalidArgumentError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export async function loadSpec(bundle: string): Promise<Spec> {
  const { parsed, file } = readSpec(bundle);
  return validateSpec(parsed, file);
}

const NAMESPACE_TYPES = new Set(["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const optional = (v: unknown, type: "string" | "boolean") => v === undefined || typeof v === type;

/**
 * The config as create may read it before the schema check: when the fields it reads before the
 * init is spawned (root, process.terminal, hostname, domainname, the namespaces, and the
 * cgroupsPath of the cgroup it makes as soon as the init is spawned) have the types the
 * schema gives them (and the seccomp listener and security labels it refuses). create then validates the whole config while the init's Node boots; anything
 * else here is undefined, and create validates first, so the schema's message names the problem.
 */
export function preSpawnView(parsed: unknown): Spec | undefined {
  if (!isObject(parsed) || !isObject(parsed.root) || typeof parsed.root.path !== "string" || !isObject(parsed.process)) return undefined;
  const p = parsed.process;
  if (!optional(p.terminal, "boolean") || !optional(p.apparmorProfile, "string") || !optional(p.selinuxLabel, "string")) return undefined;
  if (!optional(parsed.hostname, "string") || !optional(parsed.domainname, "string")) return undefined;
  if (parsed.linux !== undefined) {
    if (!isObject(parsed.linux) || !optional(parsed.linux.cgroupsPath, "string")) return undefined;
    const sysctl = parsed.linux.sysctl;
    if (sysctl !== undefined && !(isObject(sysctl) && Object.values(sysctl).every((v) => typeof v === "string"))) return undefined;
    const seccomp = parsed.linux.seccomp;
    if (seccomp !== undefined && !(isObject(seccomp) && optional(seccomp.listenerPath, "string"))) return undefined;
    const ns = parsed.linux.namespaces;
    if (ns !== undefined) {
      if (!Array.isArray(ns)) return undefined;
      const seen = new Set<unknown>();
      for (const n of ns) {
        if (!isObject(n) || !NAMESPACE_TYPES.has(n.type as string) || !optional(n.path, "string") || seen.has(n.type)) return undefined;
        seen.add(n.type);
      }
    }
  }
  return parsed as unknown as Spec;
}
