// cgroup v1 limits taking effect for real on this host's hybrid layout: every cgroup is made below
// the test process's own cgroup in each hierarchy (memory sits at /process_api/<id> here, the rest
// at /), a busybox shell is started waiting on stdin, moved in, and only then told to work.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { subCgroups, tryRmdir } from "../../runtime/cgroups/cgroupfs";
import { detectCgroupLayout, locateCgroup, newCgroupManager } from "../../runtime/cgroups/detect";
import type { CgroupManager, CgroupStats } from "../../runtime/cgroups/types";
import { FailedPreconditionError } from "../../runtime/errors";

const BUSYBOX = "/bin/busybox";
const ROOT = `berth-test-cgv1-${process.pid}`;
const layout = detectCgroupLayout();
const onV1 = layout.mode !== "unified";

// berth's root for this file, in every hierarchy; removed (deepest first) once every test is done.
after(() => {
  if (!onV1) return;
  const rootDirs = Object.values(locateCgroup("x", layout, { root: ROOT }).dirs).map((d) => d.replace(/\/x$/, ""));
  for (const dir of new Set(rootDirs)) {
    for (const sub of subCgroups(dir)) tryRmdir(sub);
    tryRmdir(dir);
  }
});

interface Workload {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Lets the shell past its `read`, once it is in the cgroup. */
  go(): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** busybox sh that waits for a line on stdin, then runs `script`. */
function workload(script: string): Workload {
  const child = spawn(BUSYBOX, ["sh", "-c", `read x; ${script}`], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on("data", (b: Buffer) => {
    err += b.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, go: () => child.stdin!.write("go\n"), exited };
}

/**
 * A cgroup for one test, with its cleanup registered first: every process in it and every
 * workload is SIGKILLed by PID, then the cgroup is removed once empty, even when the test failed.
 */
function cgroupFor(t: TestContext, name: string, warnings: string[] = []): { m: CgroupManager; track(w: Workload): Workload } {
  const m = newCgroupManager(name, { root: ROOT, layout, warn: (w) => warnings.push(w) });
  const workloads: Workload[] = [];
  t.after(async () => {
    for (let i = 0; i < 100; i++) {
      const pids = new Set([...(await m.pids().catch(() => [])), ...workloads.filter((w) => w.child.exitCode === null && w.child.signalCode === null).map((w) => w.child.pid!)]);
      if (pids.size === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      await sleep(20);
    }
    await Promise.all(workloads.map((w) => w.exited));
    await m.destroy();
  });
  return {
    m,
    track(w) {
      workloads.push(w);
      return w;
    },
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

const MiB = 1 << 20;

test("a process over its 32 MiB memory limit is OOM-killed and the kill is counted", { skip: !onV1 && "host has no cgroup v1 controllers" }, async (t) => {
  const warnings: string[] = [];
  const { m, track } = cgroupFor(t, "oom", warnings);
  await m.create();
  // memory+swap equal to memory: no swap to escape into (skipped with a warning where memsw is absent).
  await m.apply({ memory: { limit: 32 * MiB, swap: 32 * MiB } });
  for (const w of warnings) t.diagnostic(`skipped: ${w}`);
  // The shell itself holds the 100 MB string that command substitution builds.
  const w = track(workload(`x=$(${BUSYBOX} head -c 100000000 /dev/zero | ${BUSYBOX} tr '\\0' a); echo survived \${#x}`));
  await m.addProcess(w.child.pid!);
  w.go();
  const { signal } = await w.exited;
  assert.equal(signal, "SIGKILL", `expected the OOM killer's SIGKILL; stdout: ${w.stdout()} stderr: ${w.stderr()}`);
  assert.doesNotMatch(w.stdout(), /survived/);
  const s = await m.stats();
  assert.ok(s.memory.oomKills >= 1, `memory.oom_control oom_kill = ${s.memory.oomKills}`);
  assert.equal(s.memory.limit, 32 * MiB);
});

test("pids.max 10 stops a shell forking 50 sleepers", { skip: !onV1 && "host has no cgroup v1 controllers" }, async (t) => {
  const { m, track } = cgroupFor(t, "forks");
  await m.create();
  await m.apply({ pids: { limit: 10 } });
  const w = track(workload(`n=0; while [ $n -lt 50 ]; do ${BUSYBOX} sleep 60 & n=$((n+1)); echo forked $n; done; echo all forked`));
  await m.addProcess(w.child.pid!);
  w.go();
  await w.exited; // busybox sh gives up at the first fork the kernel refuses
  const forked = w.stdout().match(/^forked \d+$/gm)?.length ?? 0;
  assert.ok(forked < 50, `forked ${forked} sleepers`);
  assert.doesNotMatch(w.stdout(), /all forked/);
  assert.match(w.stderr(), /can't fork/);
  const s = await m.stats();
  assert.equal(s.pids.limit, 10);
  assert.ok(s.pids.current > 0 && s.pids.current <= 10, `pids.current = ${s.pids.current}`);
  // kill --all reaches the orphaned sleepers, which are no children of ours.
  await m.killAll("SIGKILL");
  await until("the cgroup is empty after kill --all", async () => ((await m.pids()).length === 0 ? true : undefined));
});

test("a 10 ms / 100 ms cpu quota throttles a busy loop", { skip: !onV1 && "host has no cgroup v1 controllers" }, async (t) => {
  const { m, track } = cgroupFor(t, "cpu");
  await m.create();
  await m.apply({ cpu: { quota: 10_000, period: 100_000 } });
  const w = track(workload("while :; do :; done"));
  await m.addProcess(w.child.pid!);
  const start = process.hrtime.bigint();
  w.go();
  const s = await until("the group is throttled in 3 periods", async () => {
    const st = await m.stats();
    return st.cpu.throttledPeriods >= 3 ? st : undefined;
  });
  const wallNs = Number(process.hrtime.bigint() - start);
  assert.ok(s.cpu.throttledPeriods > 0 && s.cpu.throttledTimeNs > 0, JSON.stringify(s.cpu));
  assert.ok(s.cpu.usageNs < wallNs / 2, `a capped busy loop used ${s.cpu.usageNs} ns of CPU in ${wallNs} ns`);
  assert.equal(readFileSync(join(m.location.dirs.cpu, "cpu.cfs_quota_us"), "utf8").trim(), "10000");
});

test("a frozen process uses no CPU until thawed", { skip: !onV1 && "host has no cgroup v1 controllers" }, async (t) => {
  const { m, track } = cgroupFor(t, "freeze");
  await m.create();
  const w = track(workload("while :; do :; done"));
  await m.addProcess(w.child.pid!);
  w.go();
  await until("the loop has used CPU", async () => ((await m.stats()).cpu.usageNs > 0 ? true : undefined));
  await m.freeze();
  assert.equal(await m.isFrozen(), true);
  assert.equal(readFileSync(join(m.location.dirs.freezer, "freezer.state"), "utf8").trim(), "FROZEN");
  const frozenAt = (await m.stats()).cpu.usageNs;
  await sleep(300);
  assert.equal((await m.stats()).cpu.usageNs, frozenAt, "CPU usage moved while frozen");
  await m.thaw();
  assert.equal(await m.isFrozen(), false);
  await until("the loop runs again", async () => ((await m.stats()).cpu.usageNs > frozenAt ? true : undefined));
});

test("stats move when the process works: cpu, memory, pids and direct-I/O bytes", { skip: !onV1 && "host has no cgroup v1 controllers" }, async (t) => {
  const { m, track } = cgroupFor(t, "stats");
  const dir = mkdtempSync(join(tmpdir(), "berth-cg-io-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await m.create();
  const before: CgroupStats = await m.stats();
  // O_DIRECT writes reach the block layer from the writer's own cgroup (page-cache writeback would not, on v1).
  const w = track(
    workload(`${BUSYBOX} dd if=/dev/zero of=${dir}/f bs=1M count=4 oflag=direct 2>/dev/null; x=$(${BUSYBOX} head -c 4000000 /dev/zero | ${BUSYBOX} tr '\\0' a); i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; read y`),
  );
  await m.addProcess(w.child.pid!);
  w.go();
  await until("the workload is done", async () => (w.stdout().includes("done") ? true : undefined));
  const s = await m.stats();
  assert.ok(s.cpu.usageNs > before.cpu.usageNs, "cpu usage");
  assert.ok(s.memory.usage > before.memory.usage, "memory usage");
  assert.ok(s.memory.workingSet > 0 && s.memory.workingSet <= s.memory.usage, "working set");
  assert.ok(s.pids.current >= 1, "pids.current");
  const dev = statSync(dir).dev;
  if (Math.floor(dev / 256) === 0) t.diagnostic(`io bytes not checked: ${dir} is not on a block device`);
  else {
    // A full-suite run once read 0 here right after the workload said done: read again for a
    // few seconds before calling the counter wrong.
    const io = await until("the direct writes are counted", async () => {
      const now = (await m.stats()).io.writeBytes;
      return now >= 4 * MiB ? now : undefined;
    }, 5000).catch(async () => (await m.stats()).io.writeBytes);
    assert.ok(io >= 4 * MiB, `io write bytes ${io}`);
  }
  w.child.stdin!.end("\n");
  await w.exited;
});

test("blkio throttles and device rules are applied: /dev/zero is denied, /dev/null allowed", { skip: !onV1 && "host has no cgroup v1 controllers" }, async (t) => {
  const { m, track } = cgroupFor(t, "devices");
  await m.create();
  await m.apply({
    devices: [
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
    ],
    blockIO: { throttleWriteBpsDevice: [{ major: 254, minor: 0, rate: 4 * MiB }] },
  });
  assert.equal(readFileSync(join(m.location.dirs.devices, "devices.list"), "utf8").trim(), "c 1:3 rwm");
  assert.match(readFileSync(join(m.location.dirs.blkio, "blkio.throttle.write_bps_device"), "utf8"), /^254:0 4194304$/m);
  const w = track(workload(`${BUSYBOX} head -c 1 /dev/zero >/dev/null && echo zero-ok; echo x > /dev/null && echo null-ok`));
  await m.addProcess(w.child.pid!);
  w.go();
  await w.exited;
  assert.doesNotMatch(w.stdout(), /zero-ok/);
  assert.match(w.stdout(), /null-ok/);
  assert.match(w.stderr(), /Operation not permitted/);
});

test("destroy refuses while a process lives, then removes the cgroup from every hierarchy", { skip: !onV1 && "host has no cgroup v1 controllers" }, async (t) => {
  const { m, track } = cgroupFor(t, "destroy");
  await m.create();
  const dirs = [...new Set(Object.values(m.location.dirs))];
  assert.ok(dirs.length >= 5 && dirs.every((d) => existsSync(d)), dirs.join(" "));
  const w = track(workload(`${BUSYBOX} sleep 60`));
  await m.addProcess(w.child.pid!);
  await assert.rejects(m.destroy(), (e: Error) => e instanceof FailedPreconditionError && e.message.includes(String(w.child.pid)));
  assert.ok(dirs.every((d) => existsSync(d)), "a refused destroy leaves the cgroup alone");
  process.kill(w.child.pid!, "SIGKILL");
  await w.exited;
  await m.destroy();
  assert.deepEqual(
    dirs.filter((d) => existsSync(d)),
    [],
  );
});
