// Device rules on cgroup v2: there is no devices.allow; the kernel asks a BPF_CGROUP_DEVICE eBPF
// program attached to the cgroup. This compiles the OCI rules into one, as runc's devicefilter
// does: the rules are tried from the last to the first and the first that matches decides (so a
// later rule overrides an earlier one, as writing them to devices.allow/deny in order would); no
// match denies. The program is loaded and attached with bpf(2) through koffi, replacing the one
// attached before (a single program per cgroup, no BPF_F_ALLOW_MULTI), so an update replaces.
import koffi from "koffi";
import { FailedPreconditionError, InvalidArgumentError } from "../errors";
import { errnoError, libcFunction } from "../linux/syscalls";
import type { LinuxDeviceCgroup } from "./types";

// struct bpf_cgroup_dev_ctx { u32 access_type; /* (access << 16) | type */ u32 major; u32 minor; }
const DEV_BLOCK = 1;
const DEV_CHAR = 2;
const ACC_MKNOD = 1;
const ACC_READ = 2;
const ACC_WRITE = 4;

// eBPF opcodes (linux/bpf.h, linux/bpf_common.h): class | op | source.
const LDX_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_K = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT = 0x95; // BPF_JMP | BPF_EXIT

export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });

function accessBits(access: string | undefined, index: number): number {
  const a = access ?? "rwm";
  if (!/^[rwm]*$/.test(a)) throw new InvalidArgumentError(`linux.resources.devices[${index}]: access ${JSON.stringify(a)} must be made of r, w and m`);
  return (a.includes("r") ? ACC_READ : 0) | (a.includes("w") ? ACC_WRITE : 0) | (a.includes("m") ? ACC_MKNOD : 0);
}

/** The program's instructions for `rules` (unit-testable without a kernel). */
export function deviceFilterProgram(rules: LinuxDeviceCgroup[]): Insn[] {
  // r2 = type, r3 = requested access, r4 = major, r5 = minor.
  const prog: Insn[] = [
    insn(LDX_W, 2, 1, 0, 0),
    insn(AND_K, 2, 0, 0, 0xffff),
    insn(LDX_W, 3, 1, 0, 0),
    insn(RSH_K, 3, 0, 0, 16),
    insn(LDX_W, 4, 1, 4, 0),
    insn(LDX_W, 5, 1, 8, 0),
  ];
  for (let i = rules.length - 1; i >= 0; i--) {
    const r = rules[i]!;
    const checks: Array<(skip: number) => Insn[]> = [];
    const type = r.type ?? "a";
    if (type !== "a") {
      if (type !== "b" && type !== "c") throw new InvalidArgumentError(`linux.resources.devices[${i}]: invalid device type ${JSON.stringify(type)} (want "a", "b" or "c")`);
      const t = type === "b" ? DEV_BLOCK : DEV_CHAR;
      checks.push((skip) => [insn(JNE_K, 2, 0, skip, t)]);
    }
    const acc = accessBits(r.access, i);
    if (acc !== (ACC_READ | ACC_WRITE | ACC_MKNOD)) {
      // The request must ask for nothing the rule does not name: (requested & ~allowed) == 0.
      checks.push((skip) => [insn(MOV_X, 1, 3, 0, 0), insn(AND_K, 1, 0, 0, ~acc & 0x7), insn(JNE_K, 1, 0, skip, 0)]);
    }
    if (r.major !== undefined && r.major !== null && r.major >= 0) checks.push((skip) => [insn(JNE_K, 4, 0, skip, r.major!)]);
    if (r.minor !== undefined && r.minor !== null && r.minor >= 0) checks.push((skip) => [insn(JNE_K, 5, 0, skip, r.minor!)]);
    // Lay the checks out backwards so each knows how far the rule's end is.
    const verdict = [insn(MOV_K, 0, 0, 0, r.allow ? 1 : 0), insn(EXIT, 0, 0, 0, 0)];
    let block: Insn[] = verdict;
    // Each check ends with its jump: a mismatch skips what follows it in this rule's block.
    for (let c = checks.length - 1; c >= 0; c--) block = [...checks[c]!(block.length), ...block];
    prog.push(...block);
    // A rule that matches everything decides for all the rules before it: nothing after it could
    // run, and the verifier refuses unreachable instructions.
    if (!checks.length) return prog;
  }
  prog.push(insn(MOV_K, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0));
  return prog;
}

export function encodeProgram(prog: Insn[]): Buffer {
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((p, i) => {
    buf.writeUInt8(p.code, i * 8);
    buf.writeUInt8((p.src << 4) | p.dst, i * 8 + 1);
    buf.writeInt16LE(p.off, i * 8 + 2);
    buf.writeInt32LE(p.imm | 0, i * 8 + 4);
  });
  return buf;
}

/** Runs the program on one access, as the kernel would (for tests): 1 allows, 0 denies. */
export function runDeviceFilter(prog: Insn[], ctx: { type: "b" | "c"; access: string; major: number; minor: number }): number {
  const mem = [((accessBits(ctx.access, 0) << 16) | (ctx.type === "b" ? DEV_BLOCK : DEV_CHAR)) >>> 0, ctx.major >>> 0, ctx.minor >>> 0];
  const reg = new Array<number>(11).fill(0);
  for (let pc = 0; pc < prog.length; pc++) {
    const p = prog[pc]!;
    switch (p.code) {
      case LDX_W:
        reg[p.dst] = mem[p.off / 4]!;
        break;
      case AND_K:
        reg[p.dst] = (reg[p.dst]! & p.imm) >>> 0;
        break;
      case RSH_K:
        reg[p.dst] = reg[p.dst]! >>> p.imm;
        break;
      case MOV_K:
        reg[p.dst] = p.imm >>> 0;
        break;
      case MOV_X:
        reg[p.dst] = reg[p.src]!;
        break;
      case JNE_K:
        if (reg[p.dst]! !== p.imm >>> 0) pc += p.off;
        break;
      case EXIT:
        return reg[0]!;
      default:
        throw new Error(`unknown opcode ${p.code}`);
    }
  }
  throw new Error("the program fell off its end");
}

const SYS_bpf = 321;
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
const O_RDONLY_DIRECTORY_CLOEXEC = 0o200000 | 0o2000000;

/** Loads the program for `rules` and attaches it to the cgroup directory `dir`. */
export function attachDeviceFilter(dir: string, rules: LinuxDeviceCgroup[]): void {
  if (process.arch !== "x64") throw new FailedPreconditionError(`cgroup v2 device rules: berth loads eBPF through the x86_64 syscall table only, this host is ${process.arch}`);
  const code = encodeProgram(deviceFilterProgram(rules));
  const license = Buffer.from("Apache\0");
  const log = Buffer.alloc(64 * 1024);
  const bpf = libcFunction("long syscall(long number, ...)");
  const close = libcFunction("int close(int fd)");
  // union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size, log_buf.
  const load = Buffer.alloc(128);
  load.writeUInt32LE(BPF_PROG_TYPE_CGROUP_DEVICE, 0);
  load.writeUInt32LE(code.length / 8, 4);
  load.writeBigUInt64LE(BigInt(koffi.address(code)), 8);
  load.writeBigUInt64LE(BigInt(koffi.address(license)), 16);
  load.writeUInt32LE(1, 24);
  load.writeUInt32LE(log.length, 28);
  load.writeBigUInt64LE(BigInt(koffi.address(log)), 32);
  const progFd = Number(bpf(SYS_bpf, "long", BPF_PROG_LOAD, "void *", load, "long", load.length));
  if (progFd < 0) {
    const err = errnoError("bpf(BPF_PROG_LOAD)", dir);
    const verifier = log.toString("utf8", 0, Math.max(0, log.indexOf(0))).trim();
    throw new FailedPreconditionError(`cannot load the device filter for ${dir}: ${err.message}${verifier ? ` (verifier: ${verifier.slice(-500)})` : ""}`);
  }
  try {
    const cg = Number(libcFunction("int open(const char *path, int flags)")(dir, O_RDONLY_DIRECTORY_CLOEXEC));
    if (cg < 0) throw errnoError("open", dir);
    try {
      // union bpf_attr, BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags (0: one
      // program, replaced by the next attach).
      const attach = Buffer.alloc(32);
      attach.writeUInt32LE(cg, 0);
      attach.writeUInt32LE(progFd, 4);
      attach.writeUInt32LE(BPF_CGROUP_DEVICE, 8);
      attach.writeUInt32LE(0, 12);
      if (Number(bpf(SYS_bpf, "long", BPF_PROG_ATTACH, "void *", attach, "long", attach.length)) < 0) {
        throw new FailedPreconditionError(`cannot attach the device filter to ${dir}: ${errnoError("bpf(BPF_PROG_ATTACH)", dir).message}`);
      }
    } finally {
      close(cg);
    }
  } finally {
    // The cgroup holds the program now.
    close(progFd);
  }
}
