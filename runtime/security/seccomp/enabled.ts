// Apart from the compiler, so that a caller can tell whether there is a filter to make without
// loading the compiler and its syscall tables (runtime/oci/seccomp-of.ts, on a cache hit).
import type { LinuxSeccomp } from "./types";

/** runc (specconv.SetupSeccomp): no default action and no syscalls means no filter at all. */
export function seccompEnabled(profile: LinuxSeccomp | null | undefined): profile is LinuxSeccomp {
  return !!profile && (!!profile.defaultAction || (profile.syscalls?.length ?? 0) > 0);
}
