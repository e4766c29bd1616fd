// Validators for OCI image-spec documents (manifest, index, config, oci-layout), compiled once
// from the project's copy of the official JSON Schemas (draft-04).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv, { type AnySchemaObject, type ValidateFunction } from "ajv-draft-04";

export const IMAGE_SPEC_SCHEMA_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "schemas", "oci", "image-spec-v1.1.1");

// The files disagree on their base URI (".../schema/descriptor" next to ".../schema/image/...",
// and nested "id"s that re-base a subschema), so their relative "$ref"s ("defs.json#/...") would
// point at several different URIs. Removing every "id" and registering each file under one base
// makes every reference resolve to the file it names; "id" only steers resolution, not validation.
const BASE = "https://opencontainers.org/schema/image/";

function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (!node || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    // A property *named* "id" is schema content, not the keyword.
    if (k === "id" && typeof v === "string") continue;
    out[k] = k === "properties" && v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, withoutIds(pv)])) : withoutIds(v);
  }
  return out;
}

// ajv-formats is not installed; the image-spec schemas use only these two formats.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
function isDateTime(s: string): boolean {
  return RFC3339.test(s) && !Number.isNaN(Date.parse(s.toUpperCase().replace(" ", "T")));
}
function isUri(s: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S*$/.test(s)) return false;
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

function compileAll(): Record<"manifest" | "index" | "config" | "layout", ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajv.addFormat("date-time", isDateTime);
  ajv.addFormat("uri", isUri);
  // JSON Hyper-Schema's "media" (on base64 data) describes, it does not constrain.
  ajv.addKeyword("media");
  for (const file of readdirSync(IMAGE_SPEC_SCHEMA_DIR).filter((f) => f.endsWith(".json"))) {
    const schema = JSON.parse(readFileSync(join(IMAGE_SPEC_SCHEMA_DIR, file), "utf8"));
    ajv.addSchema(withoutIds(schema) as AnySchemaObject, BASE + file);
  }
  const get = (file: string) => {
    const v = ajv.getSchema(BASE + file);
    if (!v) throw new Error(`${file} is missing from ${IMAGE_SPEC_SCHEMA_DIR}`);
    return v;
  };
  return {
    manifest: get("image-manifest-schema.json"),
    index: get("image-index-schema.json"),
    config: get("config-schema.json"),
    layout: get("image-layout-schema.json"),
  };
}

let compiled: ReturnType<typeof compileAll> | undefined;

function check(kind: keyof ReturnType<typeof compileAll>, json: unknown): void {
  compiled ??= compileAll();
  const validate = compiled[kind];
  if (validate(json)) return;
  const problems = (validate.errors ?? []).map((e) => {
    // These two messages do not name the offending value; the others already say all there is.
    const detail = e.keyword === "additionalProperties" || e.keyword === "enum" ? ` ${JSON.stringify(e.params)}` : "";
    return `${e.instancePath || "/"} ${e.message ?? e.keyword}${detail}`;
  });
  throw new Error(`not a valid OCI image ${kind}: ${problems.join("; ")}`);
}

/** Each throws an Error listing every failing instance path (e.g. "/layers/0/digest must match pattern ..."). */
export function validateManifest(json: unknown): void {
  check("manifest", json);
}
export function validateIndex(json: unknown): void {
  check("index", json);
}
export function validateConfig(json: unknown): void {
  check("config", json);
}
export function validateLayout(json: unknown): void {
  check("layout", json);
}

export const RUNTIME_SPEC_SCHEMA_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "schemas", "oci", "runtime-spec-v1.3.0");

/** The runtime-spec files write one pointer as "#definitions/x"; JSON Pointer wants "#/definitions/x". */
function fixRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(fixRefs);
  if (!node || typeof node !== "object") return node;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === "$ref" && typeof v === "string" ? v.replace(/#(?!\/)/, "#/") : fixRefs(v)]));
}

let runtimeAjv: Ajv | undefined;

/**
 * Checks a runtime-spec document (`state-schema.json`, `features-schema.json`, `config-schema.json`)
 * and throws an Error listing every failing instance path.
 */
export function validateRuntimeSpecDoc(schemaFile: "state-schema.json" | "features-schema.json" | "config-schema.json", json: unknown): void {
  if (!runtimeAjv) {
    runtimeAjv = new Ajv({ allErrors: true, strict: false });
    for (const file of readdirSync(RUNTIME_SPEC_SCHEMA_DIR).filter((f) => f.endsWith(".json"))) {
      runtimeAjv.addSchema(fixRefs(JSON.parse(readFileSync(join(RUNTIME_SPEC_SCHEMA_DIR, file), "utf8"))) as AnySchemaObject, file);
    }
  }
  const validate = runtimeAjv.getSchema(schemaFile);
  if (!validate) throw new Error(`${schemaFile} is missing from ${RUNTIME_SPEC_SCHEMA_DIR}`);
  if (validate(json)) return;
  const problems = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
  throw new Error(`not a valid OCI runtime ${schemaFile.replace("-schema.json", "")}: ${problems.join("; ")}`);
}
