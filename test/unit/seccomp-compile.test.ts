// The seccomp compiler, judged by what its programs decide: each compiled program runs in a
// classic-BPF interpreter (which also checks it as the kernel would) for chosen syscalls and
// arguments. Where the host has libseccomp, the decisions are compared with runc's, built from
// the same profile with that libseccomp.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidArgumentError, UnimplementedError } from "../../runtime/errors";
import { createLogger } from "../../runtime/log";
import { compileSeccomp, SECCOMP_FILTER_FLAG, seccompEnabled } from "../../runtime/security/seccomp/compile";
import { runtimeDefaultProfile } from "../../runtime/security/seccomp/default-profile";
import dockerDefault from "../../runtime/security/seccomp/profiles/docker-default.json";
import { X32_SYSCALLS } from "../../runtime/security/seccomp/syscalls-x32";
import { X86_SYSCALLS } from "../../runtime/security/seccomp/syscalls-x86";
import { X86_64_SYSCALLS } from "../../runtime/security/seccomp/syscalls-x86_64";
import type { LinuxSeccomp, LinuxSyscall, SeccompOperator } from "../../runtime/security/seccomp/types";
import { describeRet, loadFilter, type SeccompData } from "../support/bpf-interpreter";
import { libseccompAvailable, runcDecider } from "../support/libseccomp-oracle";

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;

/** Docker's default capability set. */
const DOCKER_CAPS = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FSETID",
  "FOWNER",
  "MKNOD",
  "NET_RAW",
  "SETGID",
  "SETUID",
  "SETFCAP",
  "SETPCAP",
  "NET_BIND_SERVICE",
  "SYS_CHROOT",
  "KILL",
  "AUDIT_WRITE",
];

const CLONE_NEWNS = 0x00020000n;
const CLONE_NEWUSER = 0x10000000n;
const CLONE_NEWNET = 0x40000000n;
const SIGCHLD = 17n;
const THREAD_FLAGS = 0x3d0f00n; // glibc's pthread_create: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID

type Abi = "x86_64" | "x86" | "x32";
const TABLES: Record<Abi, ReadonlyMap<string, number>> = { x86_64: X86_64_SYSCALLS, x86: X86_SYSCALLS, x32: X32_SYSCALLS };
const AUDIT: Record<Abi, number> = { x86_64: AUDIT_ARCH_X86_64, x86: AUDIT_ARCH_I386, x32: AUDIT_ARCH_X86_64 };

function nr(name: string, abi: Abi = "x86_64"): number {
  const n = TABLES[abi].get(name);
  assert.ok(n !== undefined, `${name} is in the ${abi} table`);
  return n;
}

const loaded = new WeakMap<Buffer, (data: SeccompData) => number>();

/** What the program returns for one syscall (checked as the kernel would, once per program). */
function runFilter(program: Buffer, data: SeccompData): number {
  let run = loaded.get(program);
  if (!run) {
    run = loadFilter(program);
    loaded.set(program, run);
  }
  return run(data);
}

/** The decision, spelled like "ALLOW" or "ERRNO(EPERM)". */
function decide(program: Buffer, name: string, args: readonly (bigint | number)[] = [], abi: Abi = "x86_64"): string {
  return describeRet(runFilter(program, { arch: AUDIT[abi], nr: nr(name, abi), args }));
}

function compile(profile: LinuxSeccomp): Buffer {
  return compileSeccomp(profile, { nativeArch: "x86_64" }).program;
}

function defaultProgram(opts: { caps?: string[]; kernel?: string } = {}): Buffer {
  const profile = runtimeDefaultProfile({
    capabilities: opts.caps ?? DOCKER_CAPS,
    arch: "x86_64",
    kernelRelease: opts.kernel ?? "6.18.0",
  });
  return compile(profile);
}

/** A profile allowing everything but the given rules: each test's rules stand alone. */
function allowBut(syscalls: LinuxSyscall[], extra: Partial<LinuxSeccomp> = {}): LinuxSeccomp {
  return { defaultAction: "SCMP_ACT_ALLOW", syscalls, ...extra };
}

const unconditionalAllowList: string[] = (dockerDefault.syscalls[0] as { names: string[] }).names;

describe("RuntimeDefault (docker-default.json with Docker's capabilities)", () => {
  const program = defaultProgram();

  test("every syscall of the unconditional allow list is allowed, on x86_64, i386 and x32", () => {
    assert.equal(dockerDefault.syscalls[0]?.action, "SCMP_ACT_ALLOW");
    for (const abi of ["x86_64", "x86", "x32"] as const) {
      const known = unconditionalAllowList.filter((name) => TABLES[abi].has(name));
      assert.ok(known.length > 250, `${abi}: ${known.length} of the list are ${abi} syscalls`);
      for (const name of known) assert.equal(decide(program, name, [], abi), "ALLOW", `${abi} ${name}`);
    }
  });

  test("what Docker does not allow fails with EPERM (defaultErrnoRet 1)", () => {
    const denied = [
      "mount",
      "umount2",
      "unshare",
      "setns",
      "pivot_root",
      "keyctl",
      "add_key",
      "request_key",
      "reboot",
      "swapon",
      "init_module",
      "kexec_load",
      "bpf",
      "perf_event_open",
      "acct",
      "settimeofday",
      "open_by_handle_at",
      "userfaultfd",
      "vhangup",
      "syslog",
    ];
    for (const name of denied) {
      assert.equal(decide(program, name), "ERRNO(EPERM)", `x86_64 ${name}`);
      assert.equal(decide(program, name, [], "x86"), "ERRNO(EPERM)", `i386 ${name}`);
    }
  });

  test("clone is allowed without namespace flags and refused with any; clone3 answers ENOSYS so libc falls back", () => {
    assert.equal(decide(program, "clone", [SIGCHLD]), "ALLOW", "fork");
    assert.equal(decide(program, "clone", [THREAD_FLAGS]), "ALLOW", "a thread");
    for (const flag of [CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, 0x02000000n, 0x04000000n, 0x08000000n, 0x20000000n]) {
      assert.equal(decide(program, "clone", [flag | SIGCHLD]), "ERRNO(EPERM)", `flag 0x${flag.toString(16)}`);
    }
    assert.equal(decide(program, "clone3"), "ERRNO(ENOSYS)");
  });

  test("personality is allowed only for Docker's five personas, compared on all 64 bits", () => {
    for (const persona of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) {
      assert.equal(decide(program, "personality", [persona]), "ALLOW", `0x${persona.toString(16)}`);
    }
    assert.equal(decide(program, "personality", [0x0040000n]), "ERRNO(EPERM)", "ADDR_NO_RANDOMIZE");
    assert.equal(decide(program, "personality", [0xffffffff_ffffffffn]), "ERRNO(EPERM)", "the high word is compared");
  });

  test("socket is allowed for every address family but AF_ALG (38) and AF_VSOCK (40)", () => {
    for (const family of [1, 2, 10, 16, 17, 37, 39, 41, 45]) {
      assert.equal(decide(program, "socket", [family]), "ALLOW", `family ${family}`);
    }
    assert.equal(decide(program, "socket", [38]), "ERRNO(EPERM)");
    assert.equal(decide(program, "socket", [40]), "ERRNO(EPERM)");
  });

  test("an i386 or x32 syscall is judged by its own table, as Docker lists x86 and x32 for amd64", () => {
    assert.equal(decide(program, "read", [], "x86"), "ALLOW");
    assert.equal(decide(program, "socketcall", [1], "x86"), "ALLOW");
    assert.equal(decide(program, "mount", [], "x86"), "ERRNO(EPERM)");
    assert.equal(decide(program, "read", [], "x32"), "ALLOW");
    assert.equal(decide(program, "mount", [], "x32"), "ERRNO(EPERM)");
  });

  test("a syscall from an architecture outside the filter is killed, as libseccomp's bad-arch action under runc", () => {
    assert.equal(describeRet(runFilter(program, { arch: AUDIT_ARCH_AARCH64, nr: 63 })), "KILL_THREAD");
  });

  test("a syscall numbered above every one the profile names answers ENOSYS (runc's stub)", () => {
    assert.equal(describeRet(runFilter(program, { arch: AUDIT_ARCH_X86_64, nr: 1000 })), "ERRNO(ENOSYS)");
    assert.equal(describeRet(runFilter(program, { arch: AUDIT_ARCH_I386, nr: 1000 })), "ERRNO(ENOSYS)");
    assert.equal(describeRet(runFilter(program, { arch: AUDIT_ARCH_X86_64, nr: 0x40000000 + 1000 })), "ERRNO(ENOSYS)");
  });
});

describe("RuntimeDefault's conditional groups", () => {
  test("with CAP_SYS_ADMIN the admin group is allowed: mount, unshare, setns, clone with namespace flags, clone3", () => {
    const program = defaultProgram({ caps: [...DOCKER_CAPS, "CAP_SYS_ADMIN"] });
    for (const name of ["mount", "umount2", "unshare", "setns", "sethostname", "clone3", "bpf"]) {
      assert.equal(decide(program, name), "ALLOW", name);
    }
    assert.equal(decide(program, "clone", [CLONE_NEWUSER | SIGCHLD]), "ALLOW");
    assert.equal(decide(program, "pivot_root"), "ERRNO(EPERM)", "Docker never allows pivot_root");
    assert.equal(decide(program, "keyctl"), "ERRNO(EPERM)", "no capability opens keyctl");
  });

  test("ptrace follows the profile: allowed from kernel 4.8, before that only with CAP_SYS_PTRACE", () => {
    assert.equal(decide(defaultProgram({ kernel: "6.18.44-fc" }), "ptrace"), "ALLOW");
    assert.equal(decide(defaultProgram({ kernel: "4.4.0-210-generic" }), "ptrace"), "ERRNO(EPERM)");
    assert.equal(decide(defaultProgram({ kernel: "4.4.0", caps: [...DOCKER_CAPS, "SYS_PTRACE"] }), "ptrace"), "ALLOW");
  });

  test("architecture-only groups follow the native architecture: arch_prctl yes, the s390 clone rule no", () => {
    const profile = runtimeDefaultProfile({ capabilities: DOCKER_CAPS, arch: "x86_64", kernelRelease: "6.18" });
    assert.deepEqual(profile.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    assert.equal(profile.defaultErrnoRet, 1);
    const names = profile.syscalls!.flatMap((s) => s.names);
    assert.ok(names.includes("arch_prctl") && names.includes("modify_ldt"));
    assert.ok(!names.includes("s390_runtime_instr") && !names.includes("riscv_flush_icache"));
    const cloneRules = profile.syscalls!.filter((s) => s.names.includes("clone"));
    assert.deepEqual(cloneRules.map((s) => s.args?.[0]?.index), [0], "only the non-s390 clone rule, on argument 0");
  });
});

describe("argument conditions", () => {
  const datum = 0x1_00000005n;
  const samples = [
    0n,
    5n,
    datum - 1n,
    datum,
    datum + 1n,
    0x0_ffffffffn,
    0x2_00000000n,
    0x1_00000000n,
    0xffffffff_ffffffffn,
  ];
  const ops: Array<[SeccompOperator, (a: bigint) => boolean]> = [
    ["SCMP_CMP_EQ", (a) => a === datum],
    ["SCMP_CMP_NE", (a) => a !== datum],
    ["SCMP_CMP_LT", (a) => a < datum],
    ["SCMP_CMP_LE", (a) => a <= datum],
    ["SCMP_CMP_GT", (a) => a > datum],
    ["SCMP_CMP_GE", (a) => a >= datum],
  ];

  test("every operator compares all 64 bits on x86_64, where the high word matters", () => {
    for (const [op, holds] of ops) {
      const program = compile(
        allowBut([{ names: ["getpriority"], action: "SCMP_ACT_ERRNO", errnoRet: 13, args: [{ index: 2, op, value: datum }] }]),
      );
      for (const a of samples) {
        const expected = holds(a) ? "ERRNO(EACCES)" : "ALLOW";
        assert.equal(decide(program, "getpriority", [0, 0, a]), expected, `${op} 0x${a.toString(16)}`);
      }
    }
  });

  test("SCMP_CMP_MASKED_EQ tests (arg & value) == valueTwo on both words", () => {
    const mask = 0xff000000_000000ffn;
    const program = compile(
      allowBut([
        {
          names: ["getpriority"],
          action: "SCMP_ACT_ERRNO",
          args: [{ index: 5, op: "SCMP_CMP_MASKED_EQ", value: mask, valueTwo: 0x12000000_00000034n }],
        },
      ]),
    );
    const at = (a: bigint) => decide(program, "getpriority", [0, 0, 0, 0, 0, a]);
    assert.equal(at(0x12345678_9abcde34n), "ERRNO(EPERM)");
    assert.equal(at(0x12000000_00000034n), "ERRNO(EPERM)");
    assert.equal(at(0x13000000_00000034n), "ALLOW", "high byte differs");
    assert.equal(at(0x12000000_00000035n), "ALLOW", "low byte differs");
  });

  test("i386 and x32 compare the low 32 bits only, as libseccomp does on 32-bit ABIs", () => {
    const profile = allowBut(
      [{ names: ["getpriority"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, op: "SCMP_CMP_GT", value: datum }] }],
      { architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
    );
    const program = compile(profile);
    for (const abi of ["x86", "x32"] as const) {
      assert.equal(decide(program, "getpriority", [6], abi), "ERRNO(EPERM)", `${abi}: 6 > 5`);
      assert.equal(decide(program, "getpriority", [5], abi), "ALLOW", `${abi}: 5`);
    }
    assert.equal(decide(program, "getpriority", [6]), "ALLOW", "x86_64: 6 < 0x100000005");
  });

  test("conditions on different arguments are ANDed; one argument named twice ORs (runc)", () => {
    const program = compile(
      allowBut([
        {
          names: ["kill"],
          action: "SCMP_ACT_ERRNO",
          args: [
            { index: 0, op: "SCMP_CMP_EQ", value: 1 },
            { index: 1, op: "SCMP_CMP_EQ", value: 9 },
          ],
        },
        {
          names: ["tgkill"],
          action: "SCMP_ACT_ERRNO",
          args: [
            { index: 2, op: "SCMP_CMP_EQ", value: 9 },
            { index: 2, op: "SCMP_CMP_EQ", value: 15 },
          ],
        },
      ]),
    );
    assert.equal(decide(program, "kill", [1, 9]), "ERRNO(EPERM)");
    assert.equal(decide(program, "kill", [1, 15]), "ALLOW");
    assert.equal(decide(program, "kill", [2, 9]), "ALLOW");
    assert.equal(decide(program, "tgkill", [0, 0, 9]), "ERRNO(EPERM)");
    assert.equal(decide(program, "tgkill", [0, 0, 15]), "ERRNO(EPERM)");
    assert.equal(decide(program, "tgkill", [0, 0, 2]), "ALLOW");
  });

  test("rules for one syscall are ORed, the first match decides, and an unconditional rule overrides them", () => {
    const rules: LinuxSyscall[] = [
      { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 5, args: [{ index: 1, op: "SCMP_CMP_EQ", value: 9 }] },
      { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 6, args: [{ index: 1, op: "SCMP_CMP_EQ", value: 15 }] },
      { names: ["tgkill"], action: "SCMP_ACT_ERRNO", errnoRet: 5, args: [{ index: 2, op: "SCMP_CMP_EQ", value: 9 }] },
      { names: ["tgkill"], action: "SCMP_ACT_ERRNO", errnoRet: 6 },
    ];
    const program = compile(allowBut(rules));
    assert.equal(decide(program, "kill", [0, 9]), "ERRNO(5)");
    assert.equal(decide(program, "kill", [0, 15]), "ERRNO(6)");
    assert.equal(decide(program, "kill", [0, 2]), "ALLOW");
    assert.equal(decide(program, "tgkill", [0, 0, 9]), "ERRNO(6)");
    assert.equal(decide(program, "tgkill", [0, 0, 2]), "ERRNO(6)");
  });

  test("on i386 a socket rule also covers socketcall(2) with that call's number, as libseccomp adds it", () => {
    const program = compile(
      allowBut([{ names: ["socket"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, op: "SCMP_CMP_EQ", value: 38 }] }], {
        architectures: ["SCMP_ARCH_X86"],
      }),
    );
    assert.equal(decide(program, "socket", [38], "x86"), "ERRNO(EPERM)");
    assert.equal(decide(program, "socket", [2], "x86"), "ALLOW");
    // libseccomp cannot see socketcall's packed arguments: every SYS_SOCKET call gets the rule.
    assert.equal(decide(program, "socketcall", [1], "x86"), "ERRNO(EPERM)");
    assert.equal(decide(program, "socketcall", [2], "x86"), "ALLOW", "SYS_BIND");
  });
});

describe("actions, flags and architectures", () => {
  test("each action returns its SECCOMP_RET value; errnoRet defaults to EPERM, defaultErrnoRet only for the default", () => {
    const program = compile({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 22,
      syscalls: [
        { names: ["read"], action: "SCMP_ACT_ALLOW" },
        { names: ["write"], action: "SCMP_ACT_KILL" },
        { names: ["open"], action: "SCMP_ACT_KILL_THREAD" },
        { names: ["close"], action: "SCMP_ACT_KILL_PROCESS" },
        { names: ["stat"], action: "SCMP_ACT_TRAP" },
        { names: ["fstat"], action: "SCMP_ACT_ERRNO" },
        { names: ["lstat"], action: "SCMP_ACT_ERRNO", errnoRet: 28 },
        { names: ["poll"], action: "SCMP_ACT_TRACE" },
        { names: ["lseek"], action: "SCMP_ACT_TRACE", errnoRet: 7 },
        { names: ["mmap"], action: "SCMP_ACT_LOG" },
        // Names a high syscall number, so runc's -ENOSYS stub leaves munmap to the default.
        { names: ["exit_group"], action: "SCMP_ACT_ALLOW" },
      ],
    });
    const expected: Record<string, string> = {
      read: "ALLOW",
      write: "KILL_THREAD",
      open: "KILL_THREAD",
      close: "KILL_PROCESS",
      stat: "TRAP(0)",
      fstat: "ERRNO(EPERM)",
      lstat: "ERRNO(ENOSPC)",
      poll: "TRACE(1)",
      lseek: "TRACE(7)",
      mmap: "LOG",
      munmap: "ERRNO(EINVAL)",
    };
    for (const [name, ret] of Object.entries(expected)) assert.equal(decide(program, name), ret, name);
  });

  test("flags: runc's SPEC_ALLOW when absent, none for [], and the spec's names mapped", () => {
    const flags = (f?: string[]) => compileSeccomp(allowBut([], { flags: f }), { nativeArch: "x86_64" }).flags;
    assert.equal(flags(undefined), SECCOMP_FILTER_FLAG.SPEC_ALLOW);
    assert.equal(flags([]), 0);
    assert.equal(
      flags(["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
      SECCOMP_FILTER_FLAG.TSYNC | SECCOMP_FILTER_FLAG.LOG | SECCOMP_FILTER_FLAG.SPEC_ALLOW,
    );
    assert.throws(() => flags(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), UnimplementedError);
    assert.throws(() => flags(["SECCOMP_FILTER_FLAG_BOGUS"]), /flag SECCOMP_FILTER_FLAG_BOGUS is not known/);
  });

  test("without x32 in the profile an x32 syscall meets the bad-arch action, except -1 which tracers use", () => {
    const program = compile(allowBut([{ names: ["mount"], action: "SCMP_ACT_ERRNO" }]));
    assert.equal(decide(program, "read", [], "x32"), "KILL_THREAD");
    assert.equal(describeRet(runFilter(program, { arch: AUDIT_ARCH_X86_64, nr: 0xffffffff })), "ALLOW");
    assert.equal(decide(program, "read", [], "x86"), "KILL_THREAD", "i386 is not in the filter either");
    assert.equal(decide(program, "mount"), "ERRNO(EPERM)");
  });

  test("the -ENOSYS stub stays out when the default lets calls through or already is ENOSYS", () => {
    const rules: LinuxSyscall[] = [{ names: ["read"], action: "SCMP_ACT_ERRNO" }];
    const above = (profile: LinuxSeccomp) =>
      describeRet(runFilter(compile(profile), { arch: AUDIT_ARCH_X86_64, nr: 1000 }));
    assert.equal(above({ defaultAction: "SCMP_ACT_ALLOW", syscalls: rules }), "ALLOW");
    assert.equal(above({ defaultAction: "SCMP_ACT_LOG", syscalls: rules }), "LOG");
    assert.equal(above({ defaultAction: "SCMP_ACT_KILL_PROCESS", syscalls: rules }), "ERRNO(ENOSYS)");
    assert.equal(above({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 38, syscalls: rules }), "ERRNO(ENOSYS)");
    const killer = compile({ defaultAction: "SCMP_ACT_KILL_PROCESS", syscalls: [{ names: ["write"], action: "SCMP_ACT_ALLOW" }] });
    assert.equal(decide(killer, "read"), "KILL_PROCESS", "below the largest named syscall the default still decides");
  });

  test("a profile far longer than 255 instructions still decides every syscall (long jumps)", () => {
    const names = [...X86_64_SYSCALLS.keys()].slice(0, 250);
    const program = compile(
      allowBut(
        names.map((name, i) => ({
          names: [name],
          action: "SCMP_ACT_ERRNO" as const,
          errnoRet: 1 + (i % 100),
          args: [{ index: 1, op: "SCMP_CMP_EQ" as const, value: 0x1_00000000n + BigInt(i) }],
        })),
      ),
    );
    assert.ok(program.length / 8 > 1000, `${program.length / 8} instructions`);
    assert.ok(hasLongJump(program), "the layout needed trampolines");
    names.forEach((name, i) => {
      assert.equal(decide(program, name, [0, 0x1_00000000n + BigInt(i)]), `ERRNO(${describeErrno(1 + (i % 100))})`, name);
      assert.equal(decide(program, name, [0, BigInt(i)]), "ALLOW", `${name} with the high word clear`);
    });
  });

  test("a profile beyond the kernel's 4096 instructions is refused with a clear error", () => {
    const names = [...X86_64_SYSCALLS.keys()].slice(0, 300);
    const args = [0, 1, 2, 3, 4, 5].map((index) => ({ index, op: "SCMP_CMP_EQ" as const, value: 0x1_00000000n }));
    const huge = allowBut(names.map((name) => ({ names: [name], action: "SCMP_ACT_ERRNO" as const, args })));
    assert.throws(() => compile(huge), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.match(err.message, /compiles to \d+ BPF instructions, more than the kernel's limit of 4096/);
      return true;
    });
  });
});

describe("what the compiler refuses or skips", () => {
  test("unknown syscall names are skipped, reported and logged, as runc skips them", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", format: "json", out: { write: (s: string) => lines.push(s) } as never });
    const profile = allowBut([{ names: ["no_such_syscall", "chown32", "mount"], action: "SCMP_ACT_ERRNO" }]);
    const compiled = compileSeccomp(profile, { nativeArch: "x86_64", log });
    assert.deepEqual(compiled.unknownSyscalls, ["no_such_syscall", "chown32"]);
    assert.equal(JSON.parse(lines[0]!).count, 2);
    assert.equal(decide(compiled.program, "mount"), "ERRNO(EPERM)");
    const withX86 = compileSeccomp({ ...profile, architectures: ["SCMP_ARCH_X86"] }, { nativeArch: "x86_64" });
    assert.deepEqual(withX86.unknownSyscalls, ["no_such_syscall"], "chown32 is an i386 syscall");
    assert.equal(decide(withX86.program, "chown32", [], "x86"), "ERRNO(EPERM)");
  });

  test("listenerPath, SCMP_ACT_NOTIFY and unknown actions, operators, architectures or argument indexes are refused", () => {
    const c = (p: LinuxSeccomp) => () => compile(p);
    assert.throws(c(allowBut([], { listenerPath: "/run/agent.sock" })), /listenerPath .* not supported/);
    assert.throws(c(allowBut([{ names: ["read"], action: "SCMP_ACT_NOTIFY" }])), UnimplementedError);
    assert.throws(c({ defaultAction: "SCMP_ACT_NOTIFY" }), UnimplementedError);
    assert.throws(c(allowBut([{ names: ["read"], action: "SCMP_ACT_BOGUS" as never }])), /not a valid action/);
    const arg = (a: object) => allowBut([{ names: ["read"], action: "SCMP_ACT_ERRNO", args: [a as never] }]);
    assert.throws(c(arg({ index: 0, op: "SCMP_CMP_BOGUS", value: 1 })), /not a valid operator/);
    assert.throws(c(arg({ index: 6, op: "SCMP_CMP_EQ", value: 1 })), /index 6 is not an argument number/);
    assert.throws(c(arg({ index: 0, op: "SCMP_CMP_EQ", value: 2 ** 60 })), /parsed into bigints/);
    assert.throws(c(allowBut([], { architectures: ["SCMP_ARCH_SH"] })), /SCMP_ARCH_SH is not a valid arch/);
    assert.throws(c(allowBut([{ names: [""], action: "SCMP_ACT_ERRNO" }])), /empty string is not a valid syscall/);
    assert.throws(c({ defaultAction: "" as never, syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }] }), InvalidArgumentError);
  });

  test("other architectures runc knows are accepted and left out: an x86_64 kernel never reports them", () => {
    const program = compile(allowBut([{ names: ["mount"], action: "SCMP_ACT_ERRNO" }], { architectures: ["SCMP_ARCH_AARCH64"] }));
    assert.equal(decide(program, "mount"), "ERRNO(EPERM)");
  });

  test("a profile without default action and syscalls means no filter, as runc reads it", () => {
    assert.equal(seccompEnabled(undefined), false);
    assert.equal(seccompEnabled({ defaultAction: "" as never }), false);
    assert.equal(seccompEnabled({ defaultAction: "SCMP_ACT_ALLOW" }), true);
  });
});

describe("decisions match runc with the host's libseccomp", { skip: !libseccompAvailable() && "libseccomp.so.2 is not installed" }, () => {
  const ALL_CAPS = [
    ...DOCKER_CAPS,
    "SYS_ADMIN",
    "SYS_PTRACE",
    "SYS_BOOT",
    "SYS_MODULE",
    "SYS_PACCT",
    "SYS_RAWIO",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYS_NICE",
    "SYSLOG",
    "BPF",
    "PERFMON",
    "DAC_READ_SEARCH",
  ];
  const argSets: bigint[][] = [
    [],
    [0n],
    [1n],
    [8n],
    [SIGCHLD],
    [38n],
    [39n],
    [40n],
    [0x20008n],
    [0xffffffffn],
    [0xffffffff_ffffffffn],
    [CLONE_NEWUSER | SIGCHLD],
    [0x1_00000000n],
    [0n, 0x1_00000005n, 7n],
    [5n, 1n, 0x1_00000004n],
  ];

  function compare(label: string, profile: LinuxSeccomp): void {
    const mine = compile(profile);
    const runc = runcDecider(profile);
    const numbers = (arch: number) => {
      const list = Array.from({ length: 1100 }, (_, i) => i);
      if (arch === AUDIT_ARCH_X86_64) list.push(...list.map((i) => 0x40000000 + i));
      return [...list, 0x3fffffff, 0x7fffffff, 0x80000000, 0x80000005, 0xbfffffff, 0xc0000000, 0xfffffffe, 0xffffffff];
    };
    const mismatches: string[] = [];
    for (const arch of [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64]) {
      for (const n of numbers(arch)) {
        for (const args of argSets) {
          const a = runFilter(mine, { arch, nr: n, args });
          const b = runc({ arch, nr: n, args });
          if (a !== b && mismatches.length < 10) {
            mismatches.push(`arch 0x${arch.toString(16)} nr 0x${n.toString(16)} [${args}]: ${describeRet(a)}, runc ${describeRet(b)}`);
          }
        }
      }
    }
    assert.deepEqual(mismatches, [], label);
  }

  test("RuntimeDefault with Docker's capabilities, with all of them, and on a 4.4 kernel", () => {
    for (const [label, caps, kernel] of [
      ["docker caps", DOCKER_CAPS, "6.18"],
      ["all caps", ALL_CAPS, "6.18"],
      ["kernel 4.4", DOCKER_CAPS, "4.4"],
    ] as const) {
      compare(label, runtimeDefaultProfile({ capabilities: caps, arch: "x86_64", kernelRelease: kernel }));
    }
  });

  test("custom profiles: every operator on 64-bit values, other defaults, i386 multiplexing, no x32", () => {
    const opsRule = (op: SeccompOperator, name: string, errnoRet: number): LinuxSyscall => ({
      names: [name],
      action: "SCMP_ACT_ERRNO",
      errnoRet,
      args: [{ index: 1, op, value: 0x1_00000005n }],
    });
    compare(
      "operators",
      allowBut(
        [
          opsRule("SCMP_CMP_EQ", "kill", 2),
          opsRule("SCMP_CMP_NE", "tkill", 3),
          opsRule("SCMP_CMP_LT", "tgkill", 4),
          opsRule("SCMP_CMP_LE", "getpriority", 5),
          opsRule("SCMP_CMP_GT", "setpriority", 6),
          opsRule("SCMP_CMP_GE", "prctl", 7),
          {
            names: ["ioctl", "fcntl"],
            action: "SCMP_ACT_TRAP",
            args: [{ index: 2, op: "SCMP_CMP_MASKED_EQ", value: 0xff_000000ffn, valueTwo: 0x04_00000007n }],
          },
          { names: ["socket", "bind", "semop"], action: "SCMP_ACT_KILL_PROCESS", args: [{ index: 0, op: "SCMP_CMP_LT", value: 39 }] },
        ],
        { architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      ),
    );
    compare("kill by default, no x32", {
      defaultAction: "SCMP_ACT_KILL_PROCESS",
      architectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
      syscalls: [
        { names: ["read", "write", "exit_group", "socketcall", "chown32"], action: "SCMP_ACT_ALLOW" },
        { names: ["personality"], action: "SCMP_ACT_LOG", args: [{ index: 0, op: "SCMP_CMP_EQ", value: 0xffffffff }] },
        { names: ["mount"], action: "SCMP_ACT_KILL_PROCESS" },
      ],
    });
  });
});

function hasLongJump(program: Buffer): boolean {
  for (let at = 0; at < program.length; at += 8) {
    if (program.readUInt16LE(at) === 0x05 /* BPF_JMP|BPF_JA */ && program.readUInt32LE(at + 4) > 255) return true;
  }
  return false;
}

function describeErrno(errno: number): string {
  return describeRet(0x00050000 | errno).slice("ERRNO(".length, -1);
}
