// Compiles an OCI linux.seccomp profile into a classic-BPF program for seccomp(2), deciding every
// (arch, syscall number, arguments) the way runc does with libseccomp:
// 1. the architecture first: seccomp_data.arch must be an ABI of the filter (x86_64 always, and
//    x86/x32 when listed), anything else gets libseccomp's bad-arch action, KILL_THREAD (runc
//    leaves libseccomp's default: SCMP_ACT_KILL);
// 2. runc's -ENOSYS stub (libcontainer/seccomp/patchbpf): unless the default action lets calls
//    through or already is ERRNO(ENOSYS), a syscall numbered above the largest one the profile
//    names for its ABI answers ENOSYS, so programs fall back from syscalls newer than the profile;
// 3. libseccomp's x32 handling: with x32 in the filter, x86_64 and x32 numbers (X32_SYSCALL_BIT
//    set) share one table; without it, an x32 number gets the bad-arch action, except -1, which
//    tracers use to skip a call and which gets the default action;
// 4. the syscall's rules (rules.ts), else the default action.
// Per ABI, these steps make the outcome a function of the syscall number that is constant on
// intervals; the program binary-searches the intervals, so each call costs a few comparisons.
import { InvalidArgumentError, UnimplementedError } from "../../errors";
import type { Logger } from "../../log";
import { actionValue, ENOSYS, isAllowLike, SECCOMP_RET } from "./actions";
import { type Abi, ABIS, filterAbis, type NativeArch } from "./arches";
import { BpfProgram, type JumpOp } from "./assemble";
import { type AbiRules, type Condition, collectRules, type SyscallRules } from "./rules";
import { X32_SYSCALL_BIT } from "./syscalls-x32";
import type { LinuxSeccomp, SeccompOperator } from "./types";

/** seccomp(2) flags (linux/seccomp.h). */
export const SECCOMP_FILTER_FLAG = {
  TSYNC: 1,
  LOG: 2,
  SPEC_ALLOW: 4,
  NEW_LISTENER: 8,
  TSYNC_ESRCH: 16,
  WAIT_KILLABLE_RECV: 32,
} as const;

/** libseccomp's default bad-arch action, which runc keeps. */
const BAD_ARCH_ACTION = SECCOMP_RET.KILL_THREAD;
const UINT32_MAX = 0xffffffff;

/** struct seccomp_data offsets. */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const argOffset = (index: number) => 16 + index * 8;

export interface CompileOptions {
  nativeArch: NativeArch;
  /** Receives a debug record naming the syscalls no ABI of the filter knows. */
  log?: Logger;
}

export interface CompiledSeccomp {
  /** struct sock_filter[], ready for struct sock_fprog. */
  program: Buffer;
  /** seccomp(2) flags; 0 means prctl(PR_SET_SECCOMP) can load it too. */
  flags: number;
  /** Profile names that no ABI of the filter knows, skipped as runc skips them. */
  unknownSyscalls: readonly string[];
}

export { seccompEnabled } from "./enabled";

export function compileSeccomp(profile: LinuxSeccomp, opts: CompileOptions): CompiledSeccomp {
  if (profile.listenerPath) {
    throw new UnimplementedError(
      `seccomp: listenerPath ${profile.listenerPath}: handing the filter to a seccomp agent is not supported by berth`,
    );
  }
  if (!profile.defaultAction) {
    throw new InvalidArgumentError("seccomp: defaultAction is required when syscalls are listed");
  }
  const defaultAction = actionValue(profile.defaultAction, profile.defaultErrnoRet, "defaultAction");
  const flags = filterFlags(profile.flags);
  const abis = filterAbis(opts.nativeArch, profile.architectures);
  const { perAbi, unknown } = collectRules(profile.syscalls ?? [], abis, defaultAction);
  if (unknown.length > 0) {
    opts.log?.debug("seccomp: syscalls unknown to every architecture of the filter were skipped", {
      count: unknown.length,
      syscalls: unknown,
    });
  }
  const stub = profile.defaultErrnoRet !== ENOSYS && !isAllowLike(profile.defaultAction);

  const p = new BpfProgram();
  const groups = archGroups(abis);
  p.load(OFFSET_ARCH);
  const starts = groups.map((g) => p.newLabel(`arch-${g.auditArch.toString(16)}`));
  groups.forEach((g, i) => {
    const next = p.newLabel("next-arch");
    p.jump("jeq", g.auditArch, starts[i]!, next);
    p.label(next);
  });
  p.ret(BAD_ARCH_ACTION);
  groups.forEach((g, i) => {
    p.label(starts[i]!);
    p.load(OFFSET_NR);
    const decide = decider(g.abis.map((abi) => perAbi.get(abi)!), stub, defaultAction);
    emitSearch(p, intervals(decide, breakpoints(g.abis.map((abi) => perAbi.get(abi)!))), defaultAction);
  });
  return { program: p.assemble(), flags, unknownSyscalls: unknown };
}

function filterFlags(names: readonly string[] | undefined): number {
  // runc sets SPEC_ALLOW when the profile says nothing about flags (kernel ≥ 4.17 has it), so
  // seccomp does not force the speculative-store-bypass mitigation on the container.
  if (names === undefined) return SECCOMP_FILTER_FLAG.SPEC_ALLOW;
  let flags = 0;
  for (const name of names) {
    switch (name) {
      case "SECCOMP_FILTER_FLAG_TSYNC":
        // runc accepts and drops it; berth passes it on. Either way the other threads of the
        // runtime process end at execve, so the container sees no difference.
        flags |= SECCOMP_FILTER_FLAG.TSYNC;
        break;
      case "SECCOMP_FILTER_FLAG_LOG":
        flags |= SECCOMP_FILTER_FLAG.LOG;
        break;
      case "SECCOMP_FILTER_FLAG_SPEC_ALLOW":
        flags |= SECCOMP_FILTER_FLAG.SPEC_ALLOW;
        break;
      case "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
        throw new UnimplementedError(
          "seccomp: flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV applies to a seccomp agent's listener, which berth does not support",
        );
      default:
        throw new InvalidArgumentError(`seccomp: flag ${name} is not known`);
    }
  }
  return flags;
}

interface ArchGroup {
  auditArch: number;
  /** x86_64 and x32 share AUDIT_ARCH_X86_64. */
  abis: Abi[];
}

function archGroups(abis: readonly Abi[]): ArchGroup[] {
  const groups: ArchGroup[] = [];
  for (const abi of abis) {
    const auditArch = ABIS[abi].auditArch;
    const group = groups.find((g) => g.auditArch === auditArch);
    if (group) group.abis.push(abi);
    else groups.push({ auditArch, abis: [abi] });
  }
  return groups;
}

type Outcome = { kind: "ret"; value: number } | { kind: "rules"; syscall: SyscallRules };

/** The outcome for one syscall number of an arch group: steps 2 to 4 of the header. */
function decider(rules: AbiRules[], stub: boolean, defaultAction: number): (nr: number) => Outcome {
  const native = rules.find((r) => r.abi === "x86_64" || r.abi === "x86")!;
  const x32 = rules.find((r) => r.abi === "x32");
  const isX86_64 = native.abi === "x86_64";
  const enosys: Outcome = { kind: "ret", value: (SECCOMP_RET.ERRNO | ENOSYS) >>> 0 };
  const byDefault: Outcome = { kind: "ret", value: defaultAction };
  return (nr) => {
    if (stub) {
      // runc tests the x32 bit with jset, so 0x80000000 and up count as x86_64 numbers here.
      const x32Bit = isX86_64 && (nr & X32_SYSCALL_BIT) !== 0;
      const largest = x32Bit ? x32?.largest : native.largest;
      if (largest !== undefined && nr > largest) return enosys;
    }
    if (isX86_64 && !x32 && nr >= X32_SYSCALL_BIT) {
      return nr === UINT32_MAX ? byDefault : { kind: "ret", value: BAD_ARCH_ACTION };
    }
    const syscall = native.syscalls.get(nr) ?? x32?.syscalls.get(nr);
    if (!syscall) return byDefault;
    const only = syscall.rules[0];
    if (syscall.rules.length === 1 && only!.conditions.length === 0) return { kind: "ret", value: only!.action };
    return { kind: "rules", syscall };
  };
}

/** Every number where the decider's answer may change. */
function breakpoints(rules: AbiRules[]): number[] {
  const points = new Set<number>([0, X32_SYSCALL_BIT, 0x80000000, 0xc0000000, UINT32_MAX]);
  for (const r of rules) {
    if (r.largest !== undefined) points.add(r.largest + 1);
    for (const nr of r.syscalls.keys()) {
      points.add(nr);
      points.add(nr + 1);
    }
  }
  return [...points].filter((n) => n <= UINT32_MAX).sort((a, b) => a - b);
}

interface Interval {
  start: number;
  outcome: Outcome;
}

/** Intervals [start, next start) with one outcome each, neighbours with equal returns merged. */
function intervals(decide: (nr: number) => Outcome, points: number[]): Interval[] {
  const out: Interval[] = [];
  for (const start of points) {
    const outcome = decide(start);
    const last = out.at(-1);
    if (last && last.outcome.kind === "ret" && outcome.kind === "ret" && last.outcome.value === outcome.value) continue;
    out.push({ start, outcome });
  }
  return out;
}

/** A binary search on the syscall number (in A) over the intervals. */
function emitSearch(p: BpfProgram, list: Interval[], defaultAction: number): void {
  if (list.length === 1) {
    const { outcome } = list[0]!;
    if (outcome.kind === "ret") p.ret(outcome.value);
    else emitRules(p, outcome.syscall, defaultAction);
    return;
  }
  const mid = list.length >> 1;
  const left = p.newLabel("lt");
  const right = p.newLabel("ge");
  p.jump("jge", list[mid]!.start, right, left);
  p.label(left);
  emitSearch(p, list.slice(0, mid), defaultAction);
  p.label(right);
  emitSearch(p, list.slice(mid), defaultAction);
}

/** The syscall's conditional rules in order: the first whose conditions all hold decides. */
function emitRules(p: BpfProgram, syscall: SyscallRules, defaultAction: number): void {
  for (const rule of syscall.rules) {
    const next = p.newLabel(`nr${syscall.nr}-next-rule`);
    for (const cond of rule.conditions) emitCondition(p, cond, syscall.argBits, next);
    p.ret(rule.action);
    p.label(next);
  }
  p.ret(defaultAction);
}

const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
const lo = (v: bigint) => Number(v & 0xffffffffn);

/** Falls through when the condition holds, jumps to `fail` when it does not. */
function emitCondition(p: BpfProgram, c: Condition, argBits: 32 | 64, fail: string): void {
  const pass = p.newLabel("pass");
  const loOffset = argOffset(c.index); // little-endian: the low word first
  const hiOffset = loOffset + 4;
  if (argBits === 32) {
    p.load(loOffset);
    emitWord(p, c, lo(c.value), lo(c.mask), pass, fail);
    p.label(pass);
    return;
  }
  const loWord = p.newLabel("lo-word");
  const hiEqual = p.newLabel("hi-equal");
  const dh = hi(c.value);
  const dl = lo(c.value);
  switch (c.op) {
    case "SCMP_CMP_EQ":
    case "SCMP_CMP_NE": {
      const [onEqual, onDiff] = c.op === "SCMP_CMP_EQ" ? [loWord, fail] : [loWord, pass];
      p.load(hiOffset);
      p.jump("jeq", dh, onEqual, onDiff);
      break;
    }
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      // above on the high word: holds; equal: the low word decides; below: fails.
      p.load(hiOffset);
      p.jump("jgt", dh, pass, hiEqual);
      p.label(hiEqual);
      p.jump("jeq", dh, loWord, fail);
      break;
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE":
      p.load(hiOffset);
      p.jump("jgt", dh, fail, hiEqual);
      p.label(hiEqual);
      p.jump("jeq", dh, loWord, pass);
      break;
    case "SCMP_CMP_MASKED_EQ":
      if (hi(c.mask) !== 0) {
        p.load(hiOffset);
        p.and(hi(c.mask));
        p.jump("jeq", dh, loWord, fail);
      }
      break;
  }
  p.label(loWord);
  // A zero low mask leaves nothing to compare: fall through to `pass`.
  if (c.op !== "SCMP_CMP_MASKED_EQ" || lo(c.mask) !== 0) {
    p.load(loOffset);
    emitWord(p, c, dl, lo(c.mask), pass, fail);
  }
  p.label(pass);
}

/** One 32-bit comparison of A, as unsigned values. */
function emitWord(p: BpfProgram, c: Condition, datum: number, mask: number, pass: string, fail: string): void {
  const jumps: Record<SeccompOperator, [JumpOp, string, string]> = {
    SCMP_CMP_EQ: ["jeq", pass, fail],
    SCMP_CMP_NE: ["jeq", fail, pass],
    SCMP_CMP_GT: ["jgt", pass, fail],
    SCMP_CMP_GE: ["jge", pass, fail],
    SCMP_CMP_LT: ["jge", fail, pass],
    SCMP_CMP_LE: ["jgt", fail, pass],
    SCMP_CMP_MASKED_EQ: ["jeq", pass, fail],
  };
  if (c.op === "SCMP_CMP_MASKED_EQ") p.and(mask);
  const [op, jt, jf] = jumps[c.op];
  p.jump(op, datum, jt, jf);
}
