// The decision runc would make for a profile, for comparing berth's compiler against: the
// filter is built with the host's libseccomp (Debian's libseccomp2, which runc links) exactly as
// runc's InitSeccomp does, exported as BPF, and fronted by runc's -ENOSYS stub (patchbpf), which
// is modelled here from runc's source. Written apart from berth's compiler on purpose: names are
// resolved by libseccomp, actions mapped by this file.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import koffi from "koffi";
import type { LinuxSeccomp } from "../../runtime/security/seccomp/types";
import { loadFilter, type SeccompData } from "./bpf-interpreter";

const SCMP_ARCH: Record<string, number> = {
  SCMP_ARCH_X86_64: 0xc000003e,
  SCMP_ARCH_X86: 0x40000003,
  SCMP_ARCH_X32: 0x4000003e,
};
const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const OPS: Record<string, number> = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
};
const SCMP_FLTATR_CTL_OPTIMIZE = 8;
const NR_SCMP_ERROR = -1;
const ENOSYS = 38;

interface Lib {
  init(def: number): unknown;
  release(ctx: unknown): void;
  archAdd(ctx: unknown, token: number): number;
  attrSet(ctx: unknown, attr: number, value: number): number;
  ruleAddArray(ctx: unknown, action: number, syscall: number, count: number, args: Buffer | null): number;
  exportBpf(ctx: unknown, fd: number): number;
  resolveName(name: string): number;
  resolveNameArch(token: number, name: string): number;
}

let lib: Lib | null | undefined;

function load(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    const l = koffi.load("libseccomp.so.2");
    lib = {
      init: l.func("void *seccomp_init(uint32_t def_action)"),
      release: l.func("void seccomp_release(void *ctx)"),
      archAdd: l.func("int seccomp_arch_add(void *ctx, uint32_t arch_token)"),
      attrSet: l.func("int seccomp_attr_set(void *ctx, int attr, uint32_t value)"),
      ruleAddArray: l.func(
        "int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const void *arg_array)",
      ),
      exportBpf: l.func("int seccomp_export_bpf(void *ctx, int fd)"),
      resolveName: l.func("int seccomp_syscall_resolve_name(const char *name)"),
      resolveNameArch: l.func("int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)"),
    };
  } catch {
    lib = null;
  }
  return lib;
}

export function libseccompAvailable(): boolean {
  return load() !== null;
}

/** runc's getAction. */
function action(name: string, errnoRet: number | undefined): number {
  const errno = (errnoRet ?? 1) & 0xffff;
  const map: Record<string, number> = {
    SCMP_ACT_KILL: 0,
    SCMP_ACT_KILL_THREAD: 0,
    SCMP_ACT_KILL_PROCESS: 0x80000000,
    SCMP_ACT_TRAP: 0x00030000,
    SCMP_ACT_ERRNO: 0x00050000 | errno,
    SCMP_ACT_TRACE: 0x7ff00000 | errno,
    SCMP_ACT_LOG: 0x7ffc0000,
    SCMP_ACT_ALLOW: 0x7fff0000,
  };
  const value = map[name];
  if (value === undefined) throw new Error(`oracle: action ${name} not modelled`);
  return value >>> 0;
}

/** struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; scmp_datum_t datum_a, datum_b; } */
function argArray(conds: Array<{ index: number; op: string; value: bigint; valueTwo: bigint }>): Buffer | null {
  if (conds.length === 0) return null;
  const buf = Buffer.alloc(24 * conds.length);
  conds.forEach((c, i) => {
    buf.writeUInt32LE(c.index, i * 24);
    buf.writeUInt32LE(OPS[c.op]!, i * 24 + 4);
    buf.writeBigUInt64LE(c.value, i * 24 + 8);
    buf.writeBigUInt64LE(c.valueTwo, i * 24 + 16);
  });
  return buf;
}

/** A function deciding like runc + libseccomp for `profile` (x86 family architectures only). */
export function runcDecider(profile: LinuxSeccomp): (data: SeccompData) => number {
  const l = load();
  if (!l) throw new Error("libseccomp.so.2 is not installed");
  const groups = profile.syscalls ?? [];
  const def = action(profile.defaultAction, profile.defaultErrnoRet);
  const ctx = l.init(def);
  if (!ctx) throw new Error("seccomp_init failed");
  const dir = mkdtempSync(join(tmpdir(), "berth-libseccomp-"));
  try {
    for (const arch of profile.architectures ?? []) {
      const token = SCMP_ARCH[arch];
      if (token === undefined) continue;
      const rc = l.archAdd(ctx, token);
      if (rc !== 0 && rc !== -17 /* EEXIST: the native arch */) throw new Error(`seccomp_arch_add ${arch}: ${rc}`);
    }
    const rulesCount = groups.reduce((n, g) => n + g.names.length, 0);
    if (rulesCount > 32) l.attrSet(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    for (const g of groups) {
      const act = action(g.action, g.errnoRet);
      for (const name of g.names) {
        if (act === def) continue;
        const nr = l.resolveName(name);
        if (nr === NR_SCMP_ERROR) continue;
        const conds = (g.args ?? []).map((a) => ({
          index: a.index,
          op: a.op,
          value: BigInt(a.value),
          valueTwo: BigInt(a.valueTwo ?? 0),
        }));
        const repeated = new Set(conds.map((c) => c.index)).size !== conds.length;
        for (const set of repeated ? conds.map((c) => [c]) : [conds]) {
          const rc = l.ruleAddArray(ctx, act, nr, set.length, argArray(set));
          if (rc !== 0) throw new Error(`seccomp_rule_add_array ${name}: ${rc}`);
        }
      }
    }
    const path = join(dir, "filter.bpf");
    const fd = openSync(path, "w");
    try {
      const rc = l.exportBpf(ctx, fd);
      if (rc !== 0) throw new Error(`seccomp_export_bpf: ${rc}`);
    } finally {
      closeSync(fd);
    }
    const run = loadFilter(readFileSync(path));
    const stub = enosysStub(l, profile);
    return (data) => stub(data) ?? run(data);
  } finally {
    l.release(ctx);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** runc's patchbpf stub: ERRNO(ENOSYS) above the largest syscall the profile names per ABI. */
function enosysStub(l: Lib, profile: LinuxSeccomp): (data: SeccompData) => number | undefined {
  const allowLike = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"].includes(profile.defaultAction);
  if (profile.defaultErrnoRet === ENOSYS || allowLike) return () => undefined;
  const arches = new Set(["SCMP_ARCH_X86_64", ...(profile.architectures ?? [])].filter((a) => a in SCMP_ARCH));
  const largest = new Map<string, number>();
  for (const arch of arches) {
    let max = 0;
    for (const g of profile.syscalls ?? []) {
      for (const name of g.names) max = Math.max(max, l.resolveNameArch(SCMP_ARCH[arch]!, name));
    }
    if (max > 0) largest.set(arch, max);
  }
  const ret = (0x00050000 | ENOSYS) >>> 0;
  return ({ arch, nr }) => {
    const n = nr >>> 0;
    if (arch === AUDIT_ARCH_I386) {
      const max = largest.get("SCMP_ARCH_X86");
      return max !== undefined && n > max ? ret : undefined;
    }
    if (arch === AUDIT_ARCH_X86_64) {
      const max = n & 0x40000000 ? largest.get("SCMP_ARCH_X32") : largest.get("SCMP_ARCH_X86_64");
      return max !== undefined && n > max ? ret : undefined;
    }
    return undefined;
  };
}
