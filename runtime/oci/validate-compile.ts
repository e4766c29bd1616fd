// The config.json validator compiled from the OCI runtime-spec v1.3 JSON Schemas with ajv. The
// build (bin/build.mjs) runs this once and bundles ajv's standalone code for it, so `berth runtime
// create` loads a precompiled validator (ajv compiling these schemas costs ~100 ms per process);
// validate.ts falls back to compiling here at run time where there is no build (tests under tsx).
import Ajv from "ajv-draft-04";
import standaloneCode from "ajv/dist/standalone/index.js";

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

function compile(standalone: boolean) {
  // inlineRefs: false keeps one function per referenced definition: the standalone module is
  // smaller (and so quicker to load) than with every reference inlined where it is used.
  const ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false, inlineRefs: false, ...(standalone ? { code: { source: true, esm: true } } : {}) });
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
  return { ajv, validate: ajv.compile(fixRefs(configSchema)) };
}

/** The validator, compiled now. */
export function compileConfigValidator() {
  return compile(false).validate;
}

/** ES module source of the same validator (default export), for the build to bundle. */
export function configValidatorSource(): string {
  const { ajv, validate } = compile(true);
  return standaloneCode(ajv, validate);
}
