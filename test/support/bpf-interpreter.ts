// A classic-BPF interpreter for seccomp filters, so tests can ask a compiled program what it
// decides for a syscall without loading it into a kernel. It first checks the program as the
// kernel does (bpf_check_classic and seccomp_check_filter: length, the instructions seccomp
// allows, aligned loads inside struct seccomp_data, jumps inside the program, a return last),
// then runs it. Independent of the compiler on purpose: it decodes raw sock_filter fields.

export interface SeccompData {
  nr: number;
  arch: number;
  instructionPointer?: bigint;
  /** Up to six 64-bit arguments; missing ones are 0. */
  args?: readonly (bigint | number)[];
}

const BPF_MAXINSNS = 4096;
const SECCOMP_DATA_SIZE = 64;
const BPF_MEMWORDS = 16;

// Instruction classes and fields (linux/filter.h, linux/bpf_common.h).
const CLASS = { LD: 0, LDX: 1, ST: 2, STX: 3, ALU: 4, JMP: 5, RET: 6, MISC: 7 } as const;
const SIZE_W = 0x00;
const MODE = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, LEN: 0x80, MSH: 0xa0 } as const;
const SRC_X = 0x08;
const ALU_OP = { ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, NEG: 0x80, MOD: 0x90, XOR: 0xa0 };
const JMP_OP = { JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40 };
const RVAL = { K: 0x00, A: 0x10 };
const MISC_OP = { TAX: 0x00, TXA: 0x80 };

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export class BpfCheckError extends Error {}

function decode(program: Buffer): Insn[] {
  if (program.length % 8 !== 0) throw new BpfCheckError(`program is ${program.length} bytes, not whole instructions`);
  const insns: Insn[] = [];
  for (let at = 0; at < program.length; at += 8) {
    insns.push({
      code: program.readUInt16LE(at),
      jt: program.readUInt8(at + 2),
      jf: program.readUInt8(at + 3),
      k: program.readUInt32LE(at + 4),
    });
  }
  return insns;
}

/** Throws BpfCheckError where the kernel would answer EINVAL when loading the filter. */
export function checkFilter(program: Buffer): void {
  const insns = decode(program);
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) {
    throw new BpfCheckError(`program has ${insns.length} instructions; the kernel takes 1 to ${BPF_MAXINSNS}`);
  }
  insns.forEach((insn, pc) => {
    const bad = (why: string) => new BpfCheckError(`instruction ${pc} (code 0x${insn.code.toString(16)}): ${why}`);
    const cls = insn.code & 0x07;
    switch (cls) {
      case CLASS.LD:
      case CLASS.LDX: {
        const mode = insn.code & 0xe0;
        if ((insn.code & 0x18) !== SIZE_W) throw bad("seccomp loads words only");
        if (mode === MODE.ABS && cls === CLASS.LD) {
          if (insn.k % 4 !== 0 || insn.k >= SECCOMP_DATA_SIZE) throw bad(`load outside struct seccomp_data: ${insn.k}`);
        } else if (mode === MODE.MEM) {
          if (insn.k >= BPF_MEMWORDS) throw bad("scratch memory index out of range");
        } else if (mode !== MODE.IMM && mode !== MODE.LEN) {
          throw bad("addressing mode not allowed in seccomp");
        }
        break;
      }
      case CLASS.ST:
      case CLASS.STX:
        if (insn.code !== cls || insn.k >= BPF_MEMWORDS) throw bad("bad store");
        break;
      case CLASS.ALU: {
        const op = insn.code & 0xf0;
        if (!Object.values(ALU_OP).includes(op)) throw bad("unknown ALU operation");
        if ((op === ALU_OP.DIV || op === ALU_OP.MOD) && !(insn.code & SRC_X) && insn.k === 0) throw bad("division by 0");
        break;
      }
      case CLASS.JMP: {
        const op = insn.code & 0xf0;
        if (op === JMP_OP.JA) {
          if (insn.code !== (CLASS.JMP | JMP_OP.JA)) throw bad("bad JA");
          if (pc + 1 + insn.k >= insns.length) throw bad("jump past the end");
        } else {
          if (!Object.values(JMP_OP).includes(op)) throw bad("unknown jump");
          if (pc + 1 + insn.jt >= insns.length || pc + 1 + insn.jf >= insns.length) throw bad("jump past the end");
        }
        break;
      }
      case CLASS.RET:
        if (insn.code !== (CLASS.RET | RVAL.K) && insn.code !== (CLASS.RET | RVAL.A)) throw bad("bad return");
        break;
      case CLASS.MISC:
        if (insn.code !== (CLASS.MISC | MISC_OP.TAX) && insn.code !== (CLASS.MISC | MISC_OP.TXA)) throw bad("bad misc");
        break;
    }
  });
  const last = insns.at(-1)!;
  if ((last.code & 0x07) !== CLASS.RET) throw new BpfCheckError("the last instruction is not a return");
}

function seccompDataWords(data: SeccompData): Uint32Array {
  const buf = Buffer.alloc(SECCOMP_DATA_SIZE);
  buf.writeUInt32LE(data.nr >>> 0, 0);
  buf.writeUInt32LE(data.arch >>> 0, 4);
  buf.writeBigUInt64LE(BigInt.asUintN(64, data.instructionPointer ?? 0n), 8);
  const args = data.args ?? [];
  for (let i = 0; i < 6; i++) buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(args[i] ?? 0)), 16 + i * 8);
  return new Uint32Array(buf.buffer, buf.byteOffset, SECCOMP_DATA_SIZE / 4);
}

/** Runs the (checked) filter for one syscall; returns the 32-bit SECCOMP_RET_* value. */
export function runFilter(program: Buffer, data: SeccompData): number {
  return loadFilter(program)(data);
}

/** Checks and decodes the filter once, for running it on many syscalls. */
export function loadFilter(program: Buffer): (data: SeccompData) => number {
  checkFilter(program);
  const insns = decode(program);
  return (data) => execute(insns, data);
}

function execute(insns: Insn[], data: SeccompData): number {
  const words = seccompDataWords(data);
  const mem = new Uint32Array(BPF_MEMWORDS);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const { code, jt, jf, k } = insns[pc]!;
    const cls = code & 0x07;
    switch (cls) {
      case CLASS.LD:
      case CLASS.LDX: {
        const mode = code & 0xe0;
        const v =
          mode === MODE.ABS ? words[k / 4]! : mode === MODE.IMM ? k : mode === MODE.LEN ? SECCOMP_DATA_SIZE : mem[k]!;
        if (cls === CLASS.LD) a = v >>> 0;
        else x = v >>> 0;
        break;
      }
      case CLASS.ST:
        mem[k] = a;
        break;
      case CLASS.STX:
        mem[k] = x;
        break;
      case CLASS.ALU: {
        const operand = code & SRC_X ? x : k;
        a = alu(code & 0xf0, a, operand);
        break;
      }
      case CLASS.JMP: {
        const op = code & 0xf0;
        if (op === JMP_OP.JA) {
          pc += k;
          break;
        }
        const operand = (code & SRC_X ? x : k) >>> 0;
        const taken =
          op === JMP_OP.JEQ
            ? a === operand
            : op === JMP_OP.JGT
              ? a > operand
              : op === JMP_OP.JGE
                ? a >= operand
                : (a & operand) !== 0;
        pc += taken ? jt : jf;
        break;
      }
      case CLASS.RET:
        return ((code & 0x18) === RVAL.A ? a : k) >>> 0;
      case CLASS.MISC:
        if ((code & 0xf8) === MISC_OP.TXA) a = x;
        else x = a;
        break;
    }
  }
  throw new BpfCheckError("ran off the end of the program");
}

function alu(op: number, a: number, b: number): number {
  switch (op) {
    case ALU_OP.ADD:
      return (a + b) >>> 0;
    case ALU_OP.SUB:
      return (a - b) >>> 0;
    case ALU_OP.MUL:
      return Math.imul(a, b) >>> 0;
    case ALU_OP.DIV:
      return b === 0 ? 0 : Math.floor(a / b) >>> 0;
    case ALU_OP.MOD:
      return b === 0 ? 0 : a % b >>> 0;
    case ALU_OP.OR:
      return (a | b) >>> 0;
    case ALU_OP.AND:
      return (a & b) >>> 0;
    case ALU_OP.XOR:
      return (a ^ b) >>> 0;
    case ALU_OP.LSH:
      return (a << (b & 31)) >>> 0;
    case ALU_OP.RSH:
      return a >>> (b & 31);
    default:
      return -a >>> 0;
  }
}

const ERRNO_NAMES: Record<number, string> = { 1: "EPERM", 13: "EACCES", 22: "EINVAL", 28: "ENOSPC", 38: "ENOSYS" };

/** A return value as tests spell it: "ALLOW", "ERRNO(EPERM)", "KILL_THREAD", "TRACE(1)", … */
export function describeRet(ret: number): string {
  const data = ret & 0xffff;
  switch ((ret & 0xffff0000) >>> 0) {
    case 0x80000000:
      return "KILL_PROCESS";
    case 0x00000000:
      return "KILL_THREAD";
    case 0x00030000:
      return `TRAP(${data})`;
    case 0x00050000:
      return `ERRNO(${ERRNO_NAMES[data] ?? data})`;
    case 0x7fc00000:
      return "USER_NOTIF";
    case 0x7ff00000:
      return `TRACE(${data})`;
    case 0x7ffc0000:
      return "LOG";
    case 0x7fff0000:
      return "ALLOW";
    default:
      return `0x${ret.toString(16)}`;
  }
}
