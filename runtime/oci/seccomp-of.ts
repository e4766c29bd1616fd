// The container's seccomp filter, compiled by the launcher (so a bad profile fails `create`
// before anything exists) and loaded by the init as the very last step before execve.
import { join } from "node:path";
import { InvalidArgumentError } from "../errors";
import { seccompEnabled } from "../security/seccomp/enabled";
import type { LinuxSeccomp } from "../security/seccomp/types";
import { BUILT_COMPILER_ID, type CompiledFilter, cachedFilter, SECCOMP_CACHE_DIR } from "./seccomp-cache";
import type { Spec } from "./spec-types";

/**
 * The filter of `spec`; given the runtime's root, through the filter cache below it
 * (seccomp-cache.ts). The compiler and its syscall tables load only when there is something to compile.
 */
export async function compileContainerSeccomp(spec: Spec, runtimeRoot?: string): Promise<CompiledFilter | undefined> {
  const profile = spec.linux?.seccomp as LinuxSeccomp | undefined;
  if (!seccompEnabled(profile)) return undefined;
  if (process.arch !== "x64") throw new InvalidArgumentError(`seccomp: berth compiles filters for x86_64 only, this host is ${process.arch}`);
  const compile = async () => {
    const compiled = (await import("../security/seccomp/compile")).compileSeccomp(profile, { nativeArch: "x86_64" });
    return { program: compiled.program, flags: compiled.flags };
  };
  return runtimeRoot === undefined ? compile() : cachedFilter(join(runtimeRoot, SECCOMP_CACHE_DIR), BUILT_COMPILER_ID, profile, compile);
}
