// `berth runtime` against runc, the oracle: the same bundle runs under both, and what the process
// inside sees — its capabilities, no_new_privs and seccomp mode, its ids and groups, hostname,
// mounts, the errno of a denied syscall, its exit code — must be the same.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Spec } from "../../runtime/oci/spec-types";
import { runtimeDefaultProfile } from "../../runtime/security/seccomp/default-profile";
import { makeBundle, removeBundle, type RunResult, runRuntime, type Runtime } from "../support/bundle";

const STATUS = `grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status`;

let roots: Record<Runtime, string>;
let seq = 0;

before(async () => {
  roots = { berth: await mkdtemp(join(tmpdir(), "berth-rt-")), runc: await mkdtemp(join(tmpdir(), "runc-rt-")) };
});

after(async () => {
  // Anything a failed test left running: delete --force by id, in each runtime's own root.
  for (const rt of ["berth", "runc"] as const) {
    const list = await runRuntime(rt, roots[rt], ["list", "-q"]);
    for (const id of list.stdout.split("\n").filter(Boolean)) await runRuntime(rt, roots[rt], ["delete", "--force", id]);
    await rm(roots[rt], { recursive: true, force: true });
  }
});

/** Runs `script` under both runtimes with the same edited bundle. */
async function both(script: string, edit?: (spec: Spec) => void): Promise<Record<Runtime, RunResult>> {
  const out = {} as Record<Runtime, RunResult>;
  for (const rt of ["runc", "berth"] as const) {
    const bundle = await makeBundle((spec) => {
      spec.process!.args = ["sh", "-c", script];
      edit?.(spec);
    });
    try {
      out[rt] = await runRuntime(rt, roots[rt], ["run", "--bundle", bundle.dir, `oracle-${process.pid}-${++seq}`]);
    } finally {
      await removeBundle(bundle);
    }
  }
  return out;
}

function same(r: Record<Runtime, RunResult>, what: string): void {
  assert.equal(r.berth.stdout, r.runc.stdout, `${what}: berth's output differs from runc's\nberth stderr: ${r.berth.stderr}\nrunc stderr: ${r.runc.stderr}`);
  assert.equal(r.berth.code, r.runc.code, `${what}: exit code (berth stderr: ${r.berth.stderr})`);
}

describe("berth runtime matches runc", () => {
  test("the default config: capabilities, no_new_privs, seccomp, ids, hostname and exit code", async () => {
    const r = await both(`${STATUS}; id; hostname; exit 3`, (s) => {
      s.hostname = "oracle";
    });
    same(r, "default");
    assert.equal(r.berth.code, 3);
    assert.match(r.berth.stdout, /uid=0\(root\) gid=0\(root\)/);
  });

  test("the mounts a container sees", async () => {
    same(await both("cat /proc/self/mounts"), "mounts");
  });

  test("a non-root user with supplementary groups", async () => {
    const r = await both(`id; ${STATUS}`, (s) => {
      s.process!.user = { uid: 1000, gid: 1000, additionalGids: [2000, 3000] };
    });
    same(r, "user");
    assert.match(r.berth.stdout, /uid=1000\(app\) gid=1000\(app\) groups=2000\(extra\),3000/);
  });

  test("a read-only rootfs refuses writes", async () => {
    const r = await both("touch /x 2>&1; echo rc=$?", (s) => {
      s.root!.readonly = true;
    });
    same(r, "readonly root");
    assert.match(r.berth.stdout, /Read-only file system/);
  });

  test("masked paths are empty and read-only paths refuse writes", async () => {
    const r = await both("cat /proc/kcore 2>&1 | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?");
    same(r, "masked and read-only paths");
  });

  test("added and dropped capabilities", async () => {
    const r = await both(STATUS, (s) => {
      const caps = ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_TIME"];
      s.process!.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] };
    });
    same(r, "capabilities");
  });

  test("no_new_privs is set when asked", async () => {
    const r = await both(STATUS, (s) => {
      s.process!.noNewPrivileges = true;
    });
    same(r, "no_new_privs");
    assert.match(r.berth.stdout, /NoNewPrivs:\t1/);
  });

  test("seccomp: a syscall denied with ERRNO fails with that errno, one denied with KILL kills", async () => {
    const errno = await both("mkdir /tmp/d 2>&1; echo rc=$?", (s) => {
      s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }] };
    });
    same(errno, "seccomp errno");
    assert.match(errno.berth.stdout, /Permission denied/);
    const kill = await both("uname -a; echo survived", (s) => {
      s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["uname"], action: "SCMP_ACT_KILL_PROCESS" }] };
    });
    assert.equal(kill.berth.stdout, kill.runc.stdout);
    assert.equal(kill.berth.code, kill.runc.code, "killed by SIGSYS under both");
    assert.equal(kill.berth.code, 128 + 31);
  });

  test("seccomp: the second container of a profile loads the filter the first one compiled (berth's filter cache), filtered as under runc", async () => {
    const profile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] } as const;
    const cacheDir = join(roots.berth, "@seccomp");
    const entries = () => (existsSync(cacheDir) ? readdirSync(cacheDir) : []);
    const before = new Set(entries());
    const run = () =>
      both("mkdir /tmp/d 2>&1; echo rc=$?", (s) => {
        s.linux!.seccomp = structuredClone(profile) as NonNullable<Spec["linux"]>["seccomp"];
      });
    const first = await run();
    same(first, "first container");
    const added = entries().filter((e) => !before.has(e));
    assert.equal(added.length, 1, "the first container's filter is kept");
    const entryFile = join(cacheDir, added[0]!);
    const written = statSync(entryFile).mtimeMs;
    assert.equal(JSON.parse(readFileSync(entryFile, "utf8")).profile, JSON.stringify(profile));
    const second = await run();
    same(second, "second container");
    assert.match(second.berth.stdout, /Operation not permitted/);
    assert.deepEqual(entries().filter((e) => !before.has(e)), added, "nothing new compiled");
    assert.equal(statSync(entryFile).mtimeMs, written, "the entry was read, not written again");
  });

  test("the default seccomp profile without no_new_privs loads while the process may, and the container runs as under runc", async () => {
    // Loading a filter without no_new_privs needs CAP_SYS_ADMIN, which the container's own
    // capabilities lack: the filter goes on before they are dropped (kubelet's usual case).
    const r = await both(`${STATUS}; ls / >/dev/null && echo made`, (s) => {
      s.process!.noNewPrivileges = false;
      s.linux!.seccomp = runtimeDefaultProfile({ capabilities: s.process!.capabilities?.bounding ?? [], arch: "x86_64" }) as NonNullable<Spec["linux"]>["seccomp"];
    });
    same(r, "default seccomp without no_new_privs");
    assert.match(r.berth.stdout, /Seccomp:\t2/);
    assert.match(r.berth.stdout, /NoNewPrivs:\t0/);
    assert.match(r.berth.stdout, /made/);
  });

  test("a pids limit stops forks", async () => {
    // Ten background sleeps against a limit of five: busybox sh gives up at the first refused fork.
    const r = await both("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; echo all-started", (s) => {
      s.linux!.resources = { pids: { limit: 5 } };
    });
    same(r, "pids limit");
    assert.doesNotMatch(r.berth.stdout, /all-started/);
    assert.match(r.berth.stderr, /can't fork/);
  });

  test("a memory limit kills the process that exceeds it", async () => {
    // tail keeps everything after the last newline, and /dev/zero has none: it grows until killed.
    const r = await both("tail /dev/zero; echo exit=$?", (s) => {
      s.linux!.resources = { memory: { limit: 32 * 1024 * 1024 } };
    });
    same(r, "memory limit");
    assert.match(r.berth.stdout, /exit=137/, "tail was SIGKILLed by the OOM killer");
  });

  test("an invalid config is refused before anything is made", async () => {
    const r = await both("true", (s) => {
      (s.process as unknown as Record<string, unknown>).user = { uid: "zero" };
    });
    assert.equal(r.berth.code, 1);
    assert.match(r.berth.stderr, /\/process\/user\/uid/);
    const list = await runRuntime("berth", roots.berth, ["list", "-q"]);
    assert.equal(list.stdout, "");
  });
});
