// Turns a profile's syscall groups into per-ABI rule tables with the semantics runc gets from
// libseccomp, so the same config.json filters the same way under berth and under runc:
// - one rule per name; a rule whose action equals the default is dropped (runc skips it);
// - names unknown to an ABI are skipped for that ABI (they exist elsewhere or on newer kernels);
// - conditions on different arguments are ANDed; when one argument appears twice, runc adds each
//   condition as a rule of its own, so they are ORed;
// - for a syscall, the first unconditional rule wins over every other rule (libseccomp keeps the
//   "shorter" filter); conditional rules are tried in profile order, the first match wins;
// - on i386, socket and System V IPC calls are also reachable through socketcall(2) and ipc(2):
//   libseccomp adds a rule on the multiplexer whose first argument is the call number, keeping
//   the rule's other conditions, and so does berth;
// - x86 and x32 compare the low 32 bits of arguments only, x86_64 all 64.
import { InvalidArgumentError } from "../../errors";
import { actionValue } from "./actions";
import { ABIS, type Abi } from "./arches";
import { X86_IPC_CALLS, X86_SOCKETCALL_CALLS, X86_SYSCALLS } from "./syscalls-x86";
import type { LinuxSeccompArg, LinuxSyscall, SeccompOperator } from "./types";

const MAX_ARGS = 6;
const UINT64_MAX = (1n << 64n) - 1n;
const OPERATORS: ReadonlySet<string> = new Set<SeccompOperator>([
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
]);

export interface Condition {
  index: number;
  op: SeccompOperator;
  /** The datum; for SCMP_CMP_MASKED_EQ, already masked. Truncated to 32 bits on 32-bit ABIs. */
  value: bigint;
  /** SCMP_CMP_MASKED_EQ only. */
  mask: bigint;
}

export interface Rule {
  action: number;
  /** ANDed; empty means the rule matches every call of the syscall. */
  conditions: Condition[];
}

export interface SyscallRules {
  nr: number;
  argBits: 32 | 64;
  /** Unconditional: the single rule that decides every call. Otherwise tried in order. */
  rules: Rule[];
}

export interface AbiRules {
  abi: Abi;
  syscalls: Map<number, SyscallRules>;
  /** The largest syscall number the profile names on this ABI (runc's -ENOSYS stub bound). */
  largest: number | undefined;
}

export interface CollectedRules {
  perAbi: Map<Abi, AbiRules>;
  /** Names no ABI of the filter knows, each once. */
  unknown: string[];
}

interface ParsedArg {
  index: number;
  op: SeccompOperator;
  value: bigint;
  valueTwo: bigint;
}

export function collectRules(
  groups: readonly LinuxSyscall[],
  abis: readonly Abi[],
  defaultAction: number,
): CollectedRules {
  const perAbi = new Map<Abi, AbiRules>(abis.map((abi) => [abi, { abi, syscalls: new Map(), largest: undefined }]));
  const pending = new Map<Abi, Map<number, Rule[]>>(abis.map((abi) => [abi, new Map()]));
  const unknown = new Set<string>();

  groups.forEach((group, at) => {
    for (const name of group.names) {
      const where = `syscalls[${at}] ${name}`;
      if (name === "") throw new InvalidArgumentError(`seccomp: syscalls[${at}]: empty string is not a valid syscall`);
      const action = actionValue(group.action, group.errnoRet, where);
      const args = (group.args ?? []).map((arg, i) => parseArg(arg, `${where} args[${i}]`));
      let known = false;
      for (const abi of abis) {
        const nr = resolve(abi, name);
        if (nr === undefined && !(abi === "x86" && multiplexed(name))) continue;
        known = true;
        const rules = perAbi.get(abi)!;
        if (nr !== undefined && !(abi === "x86" && multiplexed(name))) {
          rules.largest = Math.max(rules.largest ?? 0, nr);
        }
        if (action === defaultAction) continue;
        for (const conditions of splitSameArgument(args)) {
          addRules(pending.get(abi)!, abi, name, nr, action, conditions);
        }
      }
      if (!known) unknown.add(name);
    }
  });

  for (const abi of abis) {
    const argBits = ABIS[abi].argBits;
    for (const [nr, rules] of pending.get(abi)!) {
      const normalized = rules.map((rule) => ({
        action: rule.action,
        conditions: rule.conditions.filter((c) => !alwaysTrue(c)),
      }));
      const unconditional = normalized.find((rule) => rule.conditions.length === 0);
      perAbi.get(abi)!.syscalls.set(nr, { nr, argBits, rules: unconditional ? [unconditional] : normalized });
    }
  }
  return { perAbi, unknown: [...unknown] };
}

function resolve(abi: Abi, name: string): number | undefined {
  return ABIS[abi].syscalls.get(name);
}

function multiplexed(name: string): boolean {
  return X86_SOCKETCALL_CALLS.has(name) || X86_IPC_CALLS.has(name);
}

function addRules(
  table: Map<number, Rule[]>,
  abi: Abi,
  name: string,
  nr: number | undefined,
  action: number,
  args: ParsedArg[],
): void {
  const argBits = ABIS[abi].argBits;
  const add = (sysnr: number, list: ParsedArg[]) => {
    const rules = table.get(sysnr) ?? [];
    rules.push({ action, conditions: list.map((a) => condition(a, argBits)) });
    table.set(sysnr, rules);
  };
  if (abi === "x86" && multiplexed(name)) {
    const socketCall = X86_SOCKETCALL_CALLS.get(name);
    const mux = socketCall !== undefined ? "socketcall" : "ipc";
    const call = socketCall ?? X86_IPC_CALLS.get(name)!;
    const muxArgs = [
      { index: 0, op: "SCMP_CMP_EQ" as const, value: BigInt(call), valueTwo: 0n },
      ...args.filter((a) => a.index !== 0),
    ];
    add(X86_SYSCALLS.get(mux)!, muxArgs);
  }
  if (nr !== undefined) add(nr, args);
}

/** runc: conditions on distinct arguments make one rule; a repeated argument makes one rule each. */
function splitSameArgument(args: ParsedArg[]): ParsedArg[][] {
  const seen = new Set<number>();
  const repeated = args.some((a) => seen.size === seen.add(a.index).size);
  return repeated ? args.map((a) => [a]) : [args];
}

function parseArg(arg: LinuxSeccompArg, where: string): ParsedArg {
  if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index >= MAX_ARGS) {
    throw new InvalidArgumentError(`seccomp: ${where}: index ${arg.index} is not an argument number from 0 to 5`);
  }
  if (!OPERATORS.has(arg.op)) {
    throw new InvalidArgumentError(`seccomp: ${where}: string ${String(arg.op)} is not a valid operator for seccomp`);
  }
  return {
    index: arg.index,
    op: arg.op,
    value: uint64(arg.value, `${where} value`),
    valueTwo: uint64(arg.valueTwo ?? 0, `${where} valueTwo`),
  };
}

function uint64(v: number | bigint, where: string): bigint {
  if (typeof v === "bigint") {
    if (v < 0n || v > UINT64_MAX) throw new InvalidArgumentError(`seccomp: ${where}: ${v} is not a uint64`);
    return v;
  }
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError(
      `seccomp: ${where}: ${v} is not a uint64 a JSON number holds exactly (above 2^53 the config must be parsed into bigints)`,
    );
  }
  return BigInt(v);
}

function condition(a: ParsedArg, argBits: 32 | 64): Condition {
  const width = argBits === 64 ? UINT64_MAX : 0xffffffffn;
  if (a.op === "SCMP_CMP_MASKED_EQ") {
    const mask = a.value & width;
    return { index: a.index, op: a.op, mask, value: a.valueTwo & mask };
  }
  return { index: a.index, op: a.op, value: a.value & width, mask: width };
}

/** libseccomp drops a masked comparison whose mask (cut to the ABI's width) is zero: it always holds. */
function alwaysTrue(c: Condition): boolean {
  return c.op === "SCMP_CMP_MASKED_EQ" && c.mask === 0n;
}
