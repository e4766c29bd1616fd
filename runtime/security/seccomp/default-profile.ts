// The RuntimeDefault seccomp profile: Docker's default (profiles/docker-default.json, a copy of
// moby/profiles' seccomp/default.json) turned into an OCI linux.seccomp object for one container
// the way moby's setupSeccomp does it:
// - architectures: the archMap entry of the native architecture with its sub-architectures;
// - a group is left out when the native arch is in excludes.arches, when the container holds any
//   capability of excludes.caps, or when the kernel is at least excludes.minKernel;
// - a group is kept only when the native arch is in includes.arches, the container holds every
//   capability of includes.caps and the kernel is at least includes.minKernel (those given);
// - names, action, errnoRet and argument conditions pass through unchanged.
// moby checks capabilities against the bounding set; callers pass that set.
import { release } from "node:os";
import { InvalidArgumentError, UnimplementedError } from "../../errors";
import dockerDefault from "./profiles/docker-default.json";
import type { LinuxSeccomp, LinuxSeccompArg, LinuxSyscall, SeccompAction } from "./types";

interface Filter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

/** moby's profile format: LinuxSeccomp plus archMap and conditional groups. */
interface DockerProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures: string[] | null }>;
  syscalls: Array<{
    names?: string[];
    name?: string;
    action: SeccompAction;
    errnoRet?: number;
    args?: LinuxSeccompArg[] | null;
    comment?: string;
    includes?: Filter;
    excludes?: Filter;
  }>;
}

/** Native architecture → [its SCMP_ARCH name, libseccomp's name that includes/excludes use]. */
const ARCHES = { x86_64: ["SCMP_ARCH_X86_64", "amd64"] } as const;

export interface RuntimeDefaultOptions {
  /** The container's bounding capabilities, "CAP_SYS_ADMIN" or "SYS_ADMIN". */
  capabilities: readonly string[];
  arch: keyof typeof ARCHES;
  /** The host kernel's release (uname -r); os.release() when absent. */
  kernelRelease?: string;
}

export function runtimeDefaultProfile(opts: RuntimeDefaultOptions): LinuxSeccomp {
  return profileFrom(dockerDefault as DockerProfile, opts);
}

function profileFrom(profile: DockerProfile, opts: RuntimeDefaultOptions): LinuxSeccomp {
  const names = ARCHES[opts.arch];
  if (!names) throw new UnimplementedError(`seccomp: no RuntimeDefault profile for architecture ${opts.arch}`);
  const [seccompArch, nativeName] = names;
  const caps = new Set(opts.capabilities.map(canonicalCap));
  const kernel = parseKernel(opts.kernelRelease ?? release(), "the host kernel release");

  const entry = profile.archMap?.find((a) => a.architecture === seccompArch);
  const architectures = entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : undefined;

  const syscalls: LinuxSyscall[] = [];
  for (const group of profile.syscalls) {
    const { excludes, includes } = group;
    if (excludes) {
      if (excludes.arches?.includes(nativeName)) continue;
      if (excludes.caps?.some((c) => caps.has(canonicalCap(c)))) continue;
      if (excludes.minKernel && atLeast(kernel, parseKernel(excludes.minKernel, "excludes.minKernel"))) continue;
    }
    if (includes) {
      if (includes.arches?.length && !includes.arches.includes(nativeName)) continue;
      if (includes.caps?.some((c) => !caps.has(canonicalCap(c)))) continue;
      if (includes.minKernel && !atLeast(kernel, parseKernel(includes.minKernel, "includes.minKernel"))) continue;
    }
    const syscall: LinuxSyscall = { names: group.names ?? (group.name ? [group.name] : []), action: group.action };
    if (group.errnoRet !== undefined) syscall.errnoRet = group.errnoRet;
    if (group.args?.length) syscall.args = group.args.map((a) => ({ ...a }));
    syscalls.push(syscall);
  }

  const out: LinuxSeccomp = { defaultAction: profile.defaultAction, syscalls };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures) out.architectures = architectures;
  return out;
}

function canonicalCap(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
}

interface KernelVersion {
  kernel: number;
  major: number;
}

/** moby compares "<kernel>.<major>" only: 4.8.0-1-amd64 and 4.8 are equal. */
function parseKernel(text: string, what: string): KernelVersion {
  const m = /^(\d+)\.(\d+)/.exec(text);
  if (!m) throw new InvalidArgumentError(`seccomp: ${what} "${text}" is not "<kernel>.<major>…"`);
  return { kernel: Number(m[1]), major: Number(m[2]) };
}

function atLeast(have: KernelVersion, min: KernelVersion): boolean {
  return have.kernel > min.kernel || (have.kernel === min.kernel && have.major >= min.major);
}
