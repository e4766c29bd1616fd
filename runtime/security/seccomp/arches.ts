// The system-call ABIs a seccomp filter on an x86_64 kernel can see, with what libseccomp knows
// about each: the AUDIT_ARCH value the kernel reports in seccomp_data.arch, the syscall table,
// and whether arguments compare as 64-bit or 32-bit values. x32 reports AUDIT_ARCH_X86_64 like
// x86_64 and is told apart by X32_SYSCALL_BIT in the syscall number.
import { InvalidArgumentError, UnimplementedError } from "../../errors";
import { X32_SYSCALLS } from "./syscalls-x32";
import { X86_SYSCALLS } from "./syscalls-x86";
import { X86_64_SYSCALLS } from "./syscalls-x86_64";

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;

export type Abi = "x86_64" | "x86" | "x32";

export interface AbiDef {
  abi: Abi;
  auditArch: number;
  syscalls: ReadonlyMap<string, number>;
  /** libseccomp compares only the low 32 bits of arguments on 32-bit ABIs (x86 and x32). */
  argBits: 32 | 64;
}

export const ABIS: Readonly<Record<Abi, AbiDef>> = {
  x86_64: { abi: "x86_64", auditArch: AUDIT_ARCH_X86_64, syscalls: X86_64_SYSCALLS, argBits: 64 },
  x86: { abi: "x86", auditArch: AUDIT_ARCH_I386, syscalls: X86_SYSCALLS, argBits: 32 },
  x32: { abi: "x32", auditArch: AUDIT_ARCH_X86_64, syscalls: X32_SYSCALLS, argBits: 32 },
};

/**
 * Every architecture name runc accepts (libcontainer/seccomp/config.go), mapped to the ABI it
 * adds on this kernel. The others are accepted and left out: an x86_64 kernel never reports
 * them, so their part of the filter could never run.
 */
const KNOWN_ARCHES: Readonly<Record<string, Abi | null>> = {
  SCMP_ARCH_X86: "x86",
  SCMP_ARCH_X86_64: "x86_64",
  SCMP_ARCH_X32: "x32",
  SCMP_ARCH_ARM: null,
  SCMP_ARCH_AARCH64: null,
  SCMP_ARCH_MIPS: null,
  SCMP_ARCH_MIPS64: null,
  SCMP_ARCH_MIPS64N32: null,
  SCMP_ARCH_MIPSEL: null,
  SCMP_ARCH_MIPSEL64: null,
  SCMP_ARCH_MIPSEL64N32: null,
  SCMP_ARCH_PPC: null,
  SCMP_ARCH_PPC64: null,
  SCMP_ARCH_PPC64LE: null,
  SCMP_ARCH_RISCV64: null,
  SCMP_ARCH_S390: null,
  SCMP_ARCH_S390X: null,
  SCMP_ARCH_LOONGARCH64: null,
};

export type NativeArch = "x86_64";

/**
 * The ABIs in the filter: the native one always (libseccomp's seccomp_init adds it), then
 * those the profile lists, in the order libseccomp checks them.
 */
export function filterAbis(native: NativeArch, architectures: readonly string[] | undefined): Abi[] {
  if (native !== "x86_64") throw new UnimplementedError(`seccomp: native architecture ${native} is not supported`);
  const abis: Abi[] = ["x86_64"];
  for (const name of architectures ?? []) {
    if (!Object.hasOwn(KNOWN_ARCHES, name)) {
      throw new InvalidArgumentError(`seccomp: string ${name} is not a valid arch for seccomp`);
    }
    const abi = KNOWN_ARCHES[name];
    if (abi && !abis.includes(abi)) abis.push(abi);
  }
  return abis;
}
