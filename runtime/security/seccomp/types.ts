// The OCI runtime-spec's linux.seccomp object (config-linux.json, runtime-spec v1.3.0). The
// string lists are typed as plain strings so a config read from disk (or runtime/oci's own spec
// types) passes without casts; compileSeccomp() refuses values it does not know, with runc's
// wording.

export type SeccompAction =
  | "SCMP_ACT_KILL"
  | "SCMP_ACT_KILL_PROCESS"
  | "SCMP_ACT_KILL_THREAD"
  | "SCMP_ACT_TRAP"
  | "SCMP_ACT_ERRNO"
  | "SCMP_ACT_TRACE"
  | "SCMP_ACT_ALLOW"
  | "SCMP_ACT_LOG"
  | "SCMP_ACT_NOTIFY";

export type SeccompOperator =
  | "SCMP_CMP_NE"
  | "SCMP_CMP_LT"
  | "SCMP_CMP_LE"
  | "SCMP_CMP_EQ"
  | "SCMP_CMP_GE"
  | "SCMP_CMP_GT"
  | "SCMP_CMP_MASKED_EQ";

/** The spec's SeccompArch values, for reference; `architectures` takes any string. */
export type SeccompArch =
  | "SCMP_ARCH_X86"
  | "SCMP_ARCH_X86_64"
  | "SCMP_ARCH_X32"
  | "SCMP_ARCH_ARM"
  | "SCMP_ARCH_AARCH64"
  | "SCMP_ARCH_LOONGARCH64"
  | "SCMP_ARCH_M68K"
  | "SCMP_ARCH_MIPS"
  | "SCMP_ARCH_MIPS64"
  | "SCMP_ARCH_MIPS64N32"
  | "SCMP_ARCH_MIPSEL"
  | "SCMP_ARCH_MIPSEL64"
  | "SCMP_ARCH_MIPSEL64N32"
  | "SCMP_ARCH_PPC"
  | "SCMP_ARCH_PPC64"
  | "SCMP_ARCH_PPC64LE"
  | "SCMP_ARCH_S390"
  | "SCMP_ARCH_S390X"
  | "SCMP_ARCH_SH"
  | "SCMP_ARCH_SHEB"
  | "SCMP_ARCH_PARISC"
  | "SCMP_ARCH_PARISC64"
  | "SCMP_ARCH_RISCV64";

/** The spec's SeccompFlag values, for reference; `flags` takes any string. */
export type SeccompFlag =
  | "SECCOMP_FILTER_FLAG_TSYNC"
  | "SECCOMP_FILTER_FLAG_LOG"
  | "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
  | "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";

/**
 * One comparison on a syscall argument. `value` and `valueTwo` are uint64: JSON.parse rounds
 * numbers above 2^53, so a config that needs exact larger values must be parsed into bigints.
 * For SCMP_CMP_MASKED_EQ, `value` is the mask and `valueTwo` the expected masked value.
 */
export interface LinuxSeccompArg {
  index: number;
  value: number | bigint;
  valueTwo?: number | bigint;
  op: SeccompOperator;
}

export interface LinuxSyscall {
  names: readonly string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: readonly LinuxSeccompArg[];
}

export interface LinuxSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** SeccompArch values; the native architecture is always in the filter. */
  architectures?: readonly string[];
  /** SeccompFlag values. Absent means runc's default, SECCOMP_FILTER_FLAG_SPEC_ALLOW; [] means none. */
  flags?: readonly string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: readonly LinuxSyscall[];
}
