// The container's seccomp filter, compiled by the launcher (so a bad profile fails `create`
// before anything exists) and loaded by the init as the very last step before execve.
import { InvalidArgumentError } from "../errors";
import { compileSeccomp, seccompEnabled } from "../security/seccomp/compile";
import type { LinuxSeccomp } from "../security/seccomp/types";
import type { Spec } from "./spec-types";

export function compileContainerSeccomp(spec: Spec): { program: Buffer; flags: number } | undefined {
  const profile = spec.linux?.seccomp as LinuxSeccomp | undefined;
  if (!seccompEnabled(profile)) return undefined;
  if (process.arch !== "x64") throw new InvalidArgumentError(`seccomp: berth compiles filters for x86_64 only, this host is ${process.arch}`);
  const compiled = compileSeccomp(profile, { nativeArch: "x86_64" });
  return { program: compiled.program, flags: compiled.flags };
}
