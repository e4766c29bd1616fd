// A classic-BPF assembler for seccomp filters: the compiler emits instructions with symbolic
// labels, and assemble() lays them out as struct sock_filter[] bytes. Conditional jumps hold
// 8-bit offsets, so a target further than 255 instructions is reached through a trampoline
// (BPF_JMP|BPF_JA, 32-bit offset) placed right after the jump. Every jump goes forward, as
// the kernel's checker demands.
import { InternalError, InvalidArgumentError } from "../../errors";

/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

const BPF_LD = 0x00;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_W = 0x00;
const BPF_ABS = 0x20;
const BPF_K = 0x00;
const BPF_AND = 0x50;
const BPF_JA = 0x00;
const JUMP_OPS = { jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40 } as const;

export type JumpOp = keyof typeof JUMP_OPS;

type Item =
  | { kind: "label"; name: string }
  | { kind: "stmt"; code: number; k: number }
  | { kind: "jump"; op: JumpOp; k: number; jt: string; jf: string }
  | { kind: "ja"; target: string };

interface Placed {
  item: Item;
  pos: number;
  /** Conditional jumps only: which sides go through a trampoline. */
  farTrue: boolean;
  farFalse: boolean;
}

export class BpfProgram {
  private readonly items: Item[] = [];
  private labels = 0;

  /** A fresh label name; place it with label(). */
  newLabel(hint: string): string {
    return `${hint}#${this.labels++}`;
  }

  label(name: string): void {
    this.items.push({ kind: "label", name });
  }

  /** A = the 32-bit word at `offset` in struct seccomp_data. */
  load(offset: number): void {
    this.items.push({ kind: "stmt", code: BPF_LD | BPF_W | BPF_ABS, k: offset });
  }

  /** A &= k */
  and(k: number): void {
    this.items.push({ kind: "stmt", code: BPF_ALU | BPF_AND | BPF_K, k: k >>> 0 });
  }

  ret(k: number): void {
    this.items.push({ kind: "stmt", code: BPF_RET | BPF_K, k: k >>> 0 });
  }

  /** if (A <op> k) goto jt; else goto jf; — unsigned comparisons, jset tests A & k. */
  jump(op: JumpOp, k: number, jt: string, jf: string): void {
    this.items.push({ kind: "jump", op, k: k >>> 0, jt, jf });
  }

  goto(target: string): void {
    this.items.push({ kind: "ja", target });
  }

  /** The program as struct sock_filter[] (u16 code, u8 jt, u8 jf, u32 k; little-endian x86). */
  assemble(): Buffer {
    const placed: Placed[] = this.items.map((item) => ({ item, pos: 0, farTrue: false, farFalse: false }));
    let positions = layout(placed);
    // Each trampoline lengthens the program, which can push another jump out of reach: repeat
    // until nothing changes. Sides only ever become far, so this ends.
    for (let changed = true; changed; ) {
      changed = false;
      for (const p of placed) {
        if (p.item.kind !== "jump") continue;
        if (!p.farTrue && distance(p, p.item.jt, positions) > 255) {
          p.farTrue = true;
          changed = true;
        }
        if (!p.farFalse && distance(p, p.item.jf, positions) > 255) {
          p.farFalse = true;
          changed = true;
        }
      }
      if (changed) positions = layout(placed);
    }
    const length = placed.reduce((n, p) => n + size(p), 0);
    if (length > BPF_MAXINSNS) {
      throw new InvalidArgumentError(
        `seccomp profile compiles to ${length} BPF instructions, more than the kernel's limit of ${BPF_MAXINSNS}`,
      );
    }
    const out = Buffer.alloc(length * 8);
    const put = (at: number, code: number, jt: number, jf: number, k: number) => {
      out.writeUInt16LE(code, at * 8);
      out.writeUInt8(jt, at * 8 + 2);
      out.writeUInt8(jf, at * 8 + 3);
      out.writeUInt32LE(k >>> 0, at * 8 + 4);
    };
    for (const p of placed) {
      const { item, pos } = p;
      if (item.kind === "stmt") put(pos, item.code, 0, 0, item.k);
      else if (item.kind === "ja") put(pos, BPF_JMP | BPF_JA, 0, 0, distance(p, item.target, positions));
      else if (item.kind === "jump") {
        // Trampolines follow the jump: the true side's first, then the false side's.
        let next = pos + 1;
        const jtAt = p.farTrue ? next++ : undefined;
        const jfAt = p.farFalse ? next++ : undefined;
        const jt = jtAt !== undefined ? jtAt - pos - 1 : distance(p, item.jt, positions);
        const jf = jfAt !== undefined ? jfAt - pos - 1 : distance(p, item.jf, positions);
        put(pos, BPF_JMP | JUMP_OPS[item.op] | BPF_K, jt, jf, item.k);
        if (jtAt !== undefined) put(jtAt, BPF_JMP | BPF_JA, 0, 0, target(item.jt, positions) - jtAt - 1);
        if (jfAt !== undefined) put(jfAt, BPF_JMP | BPF_JA, 0, 0, target(item.jf, positions) - jfAt - 1);
      }
    }
    return out;
  }
}

function size(p: Placed): number {
  if (p.item.kind === "label") return 0;
  return 1 + (p.farTrue ? 1 : 0) + (p.farFalse ? 1 : 0);
}

/** Assigns each item its instruction index; returns label positions. */
function layout(placed: Placed[]): Map<string, number> {
  const labels = new Map<string, number>();
  let pos = 0;
  for (const p of placed) {
    p.pos = pos;
    if (p.item.kind === "label") {
      if (labels.has(p.item.name)) throw new InternalError(`seccomp assembler: label ${p.item.name} placed twice`);
      labels.set(p.item.name, pos);
    }
    pos += size(p);
  }
  return labels;
}

function target(label: string, positions: Map<string, number>): number {
  const at = positions.get(label);
  if (at === undefined) throw new InternalError(`seccomp assembler: label ${label} is never placed`);
  return at;
}

/** Instructions skipped to reach `label` from the instruction at p (its trampolines included). */
function distance(p: Placed, label: string, positions: Map<string, number>): number {
  const d = target(label, positions) - (p.pos + 1);
  if (d < 0) throw new InternalError(`seccomp assembler: jump to ${label} goes backwards`);
  return d;
}
