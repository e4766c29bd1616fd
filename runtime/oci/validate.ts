// config.json is checked against the OCI runtime-spec v1.3 JSON Schema before anything is
// created, so a bad bundle fails with the path of the first problem and leaves nothing behind.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ErrorObject } from "ajv";
import { InvalidArgumentError } from "../errors";
import type { Spec } from "./spec-types";

import configSchema from "../../schemas/oci/runtime-spec-v1.3.0/config-schema.json";
import configLinux from "../../schemas/oci/runtime-spec-v1.3.0/config-linux.json";
import configSolaris from "../../schemas/oci/runtime-spec-v1.3.0/config-solaris.json";
import configWindows from "../../schemas/oci/runtime-spec-v1.3.0/config-windows.json";
import configVm from "../../schemas/oci/runtime-spec-v1.3.0/config-vm.json";
import configZos from "../../schemas/oci/runtime-spec-v1.3.0/config-zos.json";
import configFreebsd from "../../schemas/oci/runtime-spec-v1.3.0/config-freebsd.json";
import defs from "../../schemas/oci/runtime-spec-v1.3.0/defs.json";
import defsLinux from "../../schemas/oci/runtime-spec-v1.3.0/defs-linux.json";
import defsWindows from "../../schemas/oci/runtime-spec-v1.3.0/defs-windows.json";
import defsVm from "../../schemas/oci/runtime-spec-v1.3.0/defs-vm.json";
import defsZos from "../../schemas/oci/runtime-spec-v1.3.0/defs-zos.json";
import defsFreebsd from "../../schemas/oci/runtime-spec-v1.3.0/defs-freebsd.json";

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
let validator: Validator | undefined;

async function compile(): Promise<Validator> {
  if (validator) return validator;
  const { default: Ajv } = await import("ajv-draft-04");
  const ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false });
  const files: Record<string, object> = {
    "defs.json": defs,
    "defs-linux.json": defsLinux,
    "defs-windows.json": defsWindows,
    "defs-vm.json": defsVm,
    "defs-zos.json": defsZos,
    "defs-freebsd.json": defsFreebsd,
    "config-linux.json": configLinux,
    "config-solaris.json": configSolaris,
    "config-windows.json": configWindows,
    "config-vm.json": configVm,
    "config-zos.json": configZos,
    "config-freebsd.json": configFreebsd,
  };
  for (const [name, schema] of Object.entries(files)) ajv.addSchema(fixRefs(schema), name);
  validator = ajv.compile(fixRefs(configSchema)) as Validator;
  return validator;
}

/** The spec's schemas write some pointers as "#definitions/x"; JSON Pointer wants "#/definitions/x". */
function fixRefs<T>(node: T): T {
  if (Array.isArray(node)) return node.map(fixRefs) as T;
  if (!node || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === "$ref" && typeof v === "string" ? v.replace(/#(?!\/)/, "#/") : fixRefs(v);
  }
  return out as T;
}

function describe(err: ErrorObject): string {
  const where = err.instancePath || "/";
  const extra = "additionalProperty" in err.params ? ` "${String(err.params.additionalProperty)}"` : "allowedValues" in err.params ? ` (${(err.params.allowedValues as unknown[]).join(", ")})` : "";
  return `${where} ${err.message ?? "is invalid"}${extra}`;
}

/** Checks a parsed config against the schema and the rules the schema cannot say. */
export async function validateSpec(spec: unknown, where: string): Promise<Spec> {
  const validate = await compile();
  if (!validate(spec)) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: ${describe(validate.errors![0]!)}`);
  const s = spec as Spec;
  if (!s.root?.path) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /root/path is required on Linux`);
  if (!s.process) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /process is required to create a container`);
  if (!s.process.args?.length && !s.process.commandLine) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /process/args must name a program`);
  if (!s.process.cwd.startsWith("/")) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /process/cwd "${s.process.cwd}" must be absolute`);
  for (const [i, m] of (s.mounts ?? []).entries()) {
    if (!m.destination.startsWith("/")) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: /mounts/${i}/destination "${m.destination}" must be absolute`);
  }
  const seen = new Set<string>();
  for (const ns of s.linux?.namespaces ?? []) {
    if (seen.has(ns.type)) throw new InvalidArgumentError(`${where}: invalid OCI runtime config: namespace "${ns.type}" is listed twice`);
    seen.add(ns.type);
  }
  return s;
}

export async function loadSpec(bundle: string): Promise<Spec> {
  const file = join(bundle, "config.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return validateSpec(parsed, file);
}
