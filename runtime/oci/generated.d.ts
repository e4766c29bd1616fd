// Modules that bin/build.mjs generates while it bundles (see its plugin); absent under tsx.

declare module "berth:oci-config-validator" {
  /** ajv standalone code for the OCI runtime-spec config schema (runtime/oci/validate-compile.ts). */
  const validate: ((data: unknown) => boolean) & { errors?: import("ajv").ErrorObject[] | null };
  export default validate;
}
