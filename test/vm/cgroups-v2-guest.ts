// Runs inside the throwaway cgroup-v2 guest (test/vm/run-in-cgroup2-vm.sh), as root in the root
// cgroup: drives berth's v2 driver against real limits and prints one JSON line, prefixed with
// RESULT_TAG, for test/integration/cgroups-v2-vm.test.ts to assert on. Node runs 20-30x slower
// under TCG here, so every step is small. Each step records its error instead of stopping the rest.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { subCgroups, tryRmdir } from "../../runtime/cgroups/cgroupfs";
import { detectCgroupLayout, newCgroupManager } from "../../runtime/cgroups/detect";
import type { CgroupManager } from "../../runtime/cgroups/types";

const RESULT_TAG = "BERTH-CGROUPS-V2-RESULT ";
const BUSYBOX = "/bin/busybox";
const ROOT = "berth-vm-test";
const MiB = 1 << 20;

const result: Record<string, unknown> = { kernel: release() };
const errors: Array<{ step: string; message: string }> = [];
const warnings: string[] = [];
const managers: CgroupManager[] = [];
const children: ChildProcess[] = [];

const layout = detectCgroupLayout();
result.mode = layout.mode;

function manager(name: string): CgroupManager {
  const m = newCgroupManager(name, { root: ROOT, layout, warn: (w) => warnings.push(w) });
  managers.push(m);
  return m;
}

interface Workload {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<NodeJS.Signals | number | null>;
}

/** busybox sh waiting on stdin; moved into `m`, then released to run `script` inside it. */
async function runIn(m: CgroupManager, script: string): Promise<Workload> {
  const child = spawn(BUSYBOX, ["sh", "-c", `read x; ${script}`], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on("data", (b: Buffer) => {
    err += b.toString();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
  await m.addProcess(child.pid!);
  child.stdin!.write("go\n");
  return { child, out: () => out, err: () => err, exited };
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined || Date.now() > deadline) return v;
    await sleep(50);
  }
}

async function step(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    errors.push({ step: name, message: (err as Error).stack ?? String(err) });
  }
}

const file = (m: CgroupManager, f: string) => readFileSync(join(m.location.dirs.unified, f), "utf8").trim();

await step("oom", async () => {
  const m = manager("oom");
  await m.create();
  await m.apply({ memory: { limit: 32 * MiB, swap: 32 * MiB } });
  const w = await runIn(m, `x=$(${BUSYBOX} head -c 100000000 /dev/zero | ${BUSYBOX} tr '\\0' a); echo survived`);
  const signal = await w.exited;
  const s = await m.stats();
  result.oom = { signal, survived: w.out().includes("survived"), oomKills: s.memory.oomKills, memoryMax: file(m, "memory.max"), swapMax: file(m, "memory.swap.max") };
});

await step("pids", async () => {
  const m = manager("pids");
  await m.create();
  await m.apply({ pids: { limit: 10 } });
  const w = await runIn(m, `n=0; while [ $n -lt 50 ]; do ${BUSYBOX} sleep 120 & n=$((n+1)); echo forked $n; done; echo all forked`);
  await w.exited;
  const s = await m.stats();
  await m.killAll("SIGKILL");
  const empty = await until(async () => ((await m.pids()).length === 0 ? true : undefined), 20_000);
  result.pids = {
    forked: w.out().match(/^forked \d+$/gm)?.length ?? 0,
    allForked: w.out().includes("all forked"),
    cantFork: /can't fork/.test(w.err()),
    current: s.pids.current,
    limit: s.pids.limit,
    emptyAfterKillAll: empty === true,
  };
});

await step("cpu", async () => {
  const m = manager("cpu");
  await m.create();
  await m.apply({ cpu: { shares: 1024, quota: 10_000, period: 100_000 } });
  const start = process.hrtime.bigint();
  const w = await runIn(m, "while :; do :; done");
  const s = await until(async () => {
    const st = await m.stats();
    return st.cpu.throttledPeriods >= 3 ? st : undefined;
  });
  const wallNs = Number(process.hrtime.bigint() - start);
  process.kill(w.child.pid!, "SIGKILL");
  await w.exited;
  result.cpu = { cpuMax: file(m, "cpu.max"), weight: file(m, "cpu.weight"), ...s?.cpu, wallNs };
});

await step("freeze", async () => {
  const m = manager("freeze");
  await m.create();
  const w = await runIn(m, "while :; do :; done");
  await until(async () => ((await m.stats()).cpu.usageNs > 0 ? true : undefined));
  await m.freeze();
  const frozen = await m.isFrozen();
  const events = file(m, "cgroup.events");
  const frozenAt = (await m.stats()).cpu.usageNs;
  await sleep(500);
  const stillAt = (await m.stats()).cpu.usageNs;
  await m.thaw();
  const thawed = !(await m.isFrozen());
  const resumed = await until(async () => ((await m.stats()).cpu.usageNs > stillAt ? true : undefined), 30_000);
  process.kill(w.child.pid!, "SIGKILL");
  await w.exited;
  result.freeze = { frozen, eventsFrozen: /^frozen 1$/m.test(events), usageStillWhileFrozen: frozenAt === stillAt, thawed, resumed: resumed === true };
});

await step("io", async () => {
  const device = readFileSync("/sys/block/vda/dev", "utf8").trim(); // the harness's 1 GiB null block device
  const [major, minor] = device.split(":").map(Number);
  const m = manager("io");
  await m.create();
  await m.apply({ blockIO: { throttleWriteBpsDevice: [{ major, minor, rate: 4 * MiB }] }, memory: { limit: 64 * MiB, swap: 96 * MiB } });
  const w = await runIn(m, `${BUSYBOX} dd if=/dev/zero of=/dev/vda bs=64k count=4 oflag=direct 2>&1; echo done`);
  await w.exited;
  const s = await m.stats();
  result.io = { device, ioMax: file(m, "io.max"), writeBytes: s.io.writeBytes, swapMax: file(m, "memory.swap.max"), out: w.out() };
});

await step("devices", async () => {
  const m = manager("devices");
  await m.create();
  // Deny everything, then allow /dev/null: the eBPF program decides, the kernel enforces.
  await m.apply({ devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }] });
  const w = await runIn(m, `echo x > /dev/null && echo null-ok; ${BUSYBOX} head -c1 /dev/zero >/dev/null 2>&1 && echo zero-ok || echo zero-denied`);
  await w.exited;
  result.devices = { out: w.out() };
});

await step("destroy", async () => {
  const m = manager("destroy");
  await m.create();
  const w = await runIn(m, `${BUSYBOX} sleep 120`);
  let refused = false;
  try {
    await m.destroy();
  } catch (err) {
    refused = (err as Error).message.includes(String(w.child.pid));
  }
  process.kill(w.child.pid!, "SIGKILL");
  await w.exited;
  for (const other of managers) await other.destroy();
  result.destroy = { refusedWhileBusy: refused, removed: managers.map((x) => !existsSync(x.location.dirs.unified)) };
});

// Whatever happened above: no process left behind, then the cgroups, deepest first.
for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
for (const m of managers) for (const pid of await m.pids().catch(() => [])) process.kill(pid, "SIGKILL");
const rootDir = join(layout.unified?.mountpoint ?? "/sys/fs/cgroup", ROOT);
await sleep(100);
for (const d of subCgroups(rootDir)) tryRmdir(d);
tryRmdir(rootDir);
result.rootRemoved = !existsSync(rootDir);
result.warnings = warnings;
result.errors = errors;
process.stdout.write(`${RESULT_TAG}${JSON.stringify(result)}\n`);
