// `berth runtime exec` against runc: a process exec'd into a running container shares its
// namespaces, cgroup, rootfs and hostname, gets the user, cwd and environment asked for, and
// returns its exit code; and no runtime fd leaks into a container's process, for run and exec,
// while --preserve-fds passes the caller's on.
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Bundle, makeBundle, removeBundle, type RunResult, type Runtime, runRuntime } from "../support/bundle";
import { alive, killPid, makeRoots, type Roots, RUNTIMES, removeRoots, runDetached, state } from "../support/runtime-pair";

const NAMESPACES = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];

let roots: Roots;
let io: string;
const bundles: Bundle[] = [];
/** The running container of each runtime (`sleep 30`) and its init's host PID. */
const box = {} as Record<Runtime, { id: string; pid: number }>;
/** Processes a test started with exec --detach, killed at the end whatever happens. */
const detached: number[] = [];
let seq = 0;

before(async () => {
  roots = await makeRoots();
  io = await mkdtemp(join(tmpdir(), "berth-exec-io-"));
  for (const rt of RUNTIMES) {
    const b = await makeBundle((s) => {
      s.process!.args = ["sleep", "30"];
      s.hostname = "exec-box";
    });
    bundles.push(b);
    const id = `exec-${process.pid}-${rt}`;
    const c = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-box`);
    assert.equal(c.code, 0, `${rt} create: ${c.stderr}`);
    assert.equal((await runRuntime(rt, roots[rt], ["start", id])).code, 0);
    box[rt] = { id, pid: (await state(rt, roots[rt], id)).pid as number };
  }
});

after(async () => {
  for (const pid of detached) killPid(pid);
  await removeRoots(roots);
  for (const b of bundles) await removeBundle(b);
  await rm(io, { recursive: true, force: true });
});

/** `exec` under both runtimes with the same arguments (before the id) and command (after it). */
async function execBoth(flags: string[], command: string[], openFds?: () => number[]): Promise<Record<Runtime, RunResult>> {
  const out = {} as Record<Runtime, RunResult>;
  for (const rt of RUNTIMES) out[rt] = await withFds(openFds, (extraFds) => runRuntime(rt, roots[rt], ["exec", ...flags, box[rt].id, ...command], { extraFds }));
  return out;
}

/** Runs `fn` with fresh fds from `openFds` (each runtime reads its own), closed afterwards. */
async function withFds<T>(openFds: (() => number[]) | undefined, fn: (fds: number[]) => Promise<T>): Promise<T> {
  const fds = openFds?.() ?? [];
  try {
    return await fn(fds);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

function same(r: Record<Runtime, RunResult>, what: string): void {
  assert.equal(r.berth.stdout, r.runc.stdout, `${what}: berth's output differs from runc's\nberth stderr: ${r.berth.stderr}\nrunc stderr: ${r.runc.stderr}`);
  assert.equal(r.berth.code, r.runc.code, `${what}: exit code (berth stderr: ${r.berth.stderr})`);
}

describe("berth runtime exec matches runc", () => {
  test("the exec'd process is in the container's pid, net, ipc, uts, mount and cgroup namespaces", async () => {
    const r = await execBoth([], ["sh", "-c", `for n in ${NAMESPACES.join(" ")}; do readlink /proc/self/ns/$n; done`]);
    for (const rt of RUNTIMES) {
      assert.equal(r[rt].code, 0, `${rt}: ${r[rt].stderr}`);
      const host = NAMESPACES.map((n) => readlinkSync(`/proc/${box[rt].pid}/ns/${n}`));
      assert.deepEqual(r[rt].stdout.trim().split("\n"), host, `${rt}: the exec'd process sees the init's namespaces`);
      // And they are the container's own, not the host's.
      for (const n of ["pid", "net", "mnt"]) assert.notEqual(readlinkSync(`/proc/${box[rt].pid}/ns/${n}`), readlinkSync(`/proc/self/ns/${n}`));
    }
  });

  test("the exec'd process is in the container's cgroup", async () => {
    const r = await execBoth([], ["sh", "-c", "cat /proc/self/cgroup; echo -; cat /proc/1/cgroup"]);
    same(r, "cgroup");
    const [mine, init] = r.berth.stdout.split("-\n");
    assert.equal(mine, init);
  });

  test("the exec'd process sees the container's rootfs, hostname and process tree", async () => {
    const r = await execBoth([], ["sh", "-c", "hostname; ls /; cat /proc/1/cmdline | tr '\\0' ' '; echo"]);
    same(r, "rootfs and hostname");
    assert.match(r.berth.stdout, /^exec-box\n/);
    assert.match(r.berth.stdout, /sleep 30 \n$/);
  });

  test("exec returns the process's exit code", async () => {
    const r = await execBoth([], ["sh", "-c", "exit 7"]);
    same(r, "exit code");
    assert.equal(r.berth.code, 7);
  });

  test("--process runs the process a process.json describes", async () => {
    const file = join(io, "process.json");
    writeFileSync(
      file,
      JSON.stringify({
        terminal: false,
        user: { uid: 1000, gid: 1000, additionalGids: [2000] },
        args: ["sh", "-c", 'echo "$FOO"; pwd; id; grep -E "^Cap(Eff|Bnd):" /proc/self/status'],
        env: ["PATH=/bin", "FOO=from process.json"],
        cwd: "/home/app",
        capabilities: { bounding: ["CAP_KILL"], effective: [], permitted: [] },
      }),
    );
    const r = await execBoth(["--process", file], []);
    same(r, "--process");
    assert.match(r.berth.stdout, /^from process\.json\n\/home\/app\nuid=1000\(app\) gid=1000\(app\) groups=2000\(extra\)\n/);
  });

  test("--env, --cwd and --user change the container's process settings", async () => {
    const r = await execBoth(["--env", "GREETING=hello there", "--cwd", "/tmp", "--user", "1000:1000"], ["sh", "-c", 'echo "$GREETING"; pwd; id; echo "$PATH"']);
    same(r, "--env --cwd --user");
    assert.match(r.berth.stdout, /^hello there\n\/tmp\nuid=1000\(app\) gid=1000\(app\)/);
  });

  test("--detach returns while the process runs, and --pid-file names it", async () => {
    for (const rt of RUNTIMES) {
      const pidFile = join(io, `${rt}-detached.pid`);
      const r = await runDetached(rt, roots[rt], ["exec", "--detach", "--pid-file", pidFile, box[rt].id, "sleep", "30"], io, `${rt}-detached-${++seq}`);
      assert.equal(r.code, 0, `${rt}: ${r.stderr}`);
      const pid = Number(readFileSync(pidFile, "utf8"));
      detached.push(pid);
      assert.ok(alive(pid), `${rt}: the detached process (pid ${pid}) is still running after exec returned`);
      assert.equal(readFileSync(`/proc/${pid}/cmdline`, "utf8"), "sleep\x0030\x00");
      for (const n of NAMESPACES) assert.equal(readlinkSync(`/proc/${pid}/ns/${n}`), readlinkSync(`/proc/${box[rt].pid}/ns/${n}`), `${rt}: ${n} namespace`);
      assert.equal(readFileSync(`/proc/${pid}/cgroup`, "utf8"), readFileSync(`/proc/${box[rt].pid}/cgroup`, "utf8"), `${rt}: cgroup`);
      killPid(pid);
    }
  });

  test("exec's own failures exit 255, as runc's, so they differ from the process's codes", async () => {
    const noProgram = await execBoth([], ["no-such-program"]);
    same(noProgram, "no such program");
    const badCwd = await execBoth(["--cwd", "/no/such/dir"], ["true"]);
    same(badCwd, "no such cwd");
    const unknown = {} as Record<Runtime, RunResult>;
    for (const rt of RUNTIMES) unknown[rt] = await runRuntime(rt, roots[rt], ["exec", `never-${process.pid}`, "true"]);
    same(unknown, "no such container");
    // (uid_t)-1 is "leave unchanged" to setresuid: the process would run as root.
    const minusOne = await execBoth(["--user", "4294967295"], ["id", "-u"]);
    same(minusOne, "uid 4294967295");
    assert.match(minusOne.berth.stderr, /uid 4294967295 is out of range/);
    assert.deepEqual([noProgram.berth.code, badCwd.berth.code, unknown.berth.code, minusOne.berth.code], [255, 255, 255, 255]);
    assert.match(noProgram.berth.stderr, /no-such-program/);
    assert.match(badCwd.berth.stderr, /\/no\/such\/dir/);
    assert.match(unknown.berth.stderr, /does not exist/);
  });

  test("exec into a stopped container fails", async () => {
    for (const rt of RUNTIMES) {
      const b = await makeBundle((s) => {
        s.process!.args = ["true"];
      });
      bundles.push(b);
      const id = `exec-stopped-${process.pid}-${++seq}`;
      assert.equal((await runRuntime(rt, roots[rt], ["run", "--keep", "--bundle", b.dir, id])).code, 0);
      const r = await runRuntime(rt, roots[rt], ["exec", id, "true"]);
      assert.equal(r.code, 255, `${rt}: ${r.stderr}`);
      assert.match(r.stderr, /stopped/);
      assert.equal((await runRuntime(rt, roots[rt], ["delete", id])).code, 0);
    }
  });
});

// The fds of ls (its own directory fd is one more: 3, or 4 with one preserved fd), then those of
// the shell, listed by a forked ls while the shell waits (no pipeline: its pipe fds would race in;
// not last: sh would exec it in its own place). runc's output is the oracle.
const FDS = "ls /proc/self/fd; echo -; ls /proc/$$/fd; echo .";

describe("no runtime fd reaches a container's process", () => {
  async function runBoth(script: string, flags: string[] = [], openFds?: () => number[]): Promise<Record<Runtime, RunResult>> {
    const out = {} as Record<Runtime, RunResult>;
    for (const rt of RUNTIMES) {
      const b = await makeBundle((s) => {
        s.process!.args = ["sh", "-c", script];
      });
      try {
        const id = `fds-${process.pid}-${++seq}`;
        out[rt] = await withFds(openFds, (extraFds) => runRuntime(rt, roots[rt], ["run", ...flags, "--bundle", b.dir, id], { extraFds }));
      } finally {
        await removeBundle(b);
      }
    }
    return out;
  }

  test("run: the process has only fds 0, 1 and 2", async () => {
    const r = await runBoth(FDS);
    same(r, "run fds");
    assert.equal(r.berth.stdout, "0\n1\n2\n3\n-\n0\n1\n2\n.\n");
  });

  test("exec: the process has only fds 0, 1 and 2", async () => {
    const r = await execBoth([], ["sh", "-c", FDS]);
    same(r, "exec fds");
    assert.equal(r.berth.stdout, "0\n1\n2\n3\n-\n0\n1\n2\n.\n");
  });

  test("--preserve-fds 1 passes the caller's fd 3 on, to run and to exec", async () => {
    const file = join(io, "preserved.txt");
    writeFileSync(file, "passed through\n");
    const open = () => [openSync(file, "r")];
    const run = await runBoth(`cat <&3; ${FDS}`, ["--preserve-fds", "1"], open);
    same(run, "run --preserve-fds");
    assert.equal(run.berth.stdout, "passed through\n0\n1\n2\n3\n4\n-\n0\n1\n2\n3\n.\n");
    const exec = await execBoth(["--preserve-fds", "1"], ["sh", "-c", `cat <&3; ${FDS}`], open);
    same(exec, "exec --preserve-fds");
    assert.equal(exec.berth.stdout, "passed through\n0\n1\n2\n3\n4\n-\n0\n1\n2\n3\n.\n");
  });
});
