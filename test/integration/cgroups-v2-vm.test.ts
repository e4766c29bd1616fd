// The cgroup v2 driver proven on a pure v2 kernel: one throwaway QEMU guest (cgroup_no_v1=all,
// this host's root shared read-only, every write thrown away) runs test/vm/cgroups-v2-guest.ts,
// which applies real limits through berth's v2 driver and prints one JSON result. This host keeps
// its hybrid layout untouched. A guest that cannot boot fails the test with the harness's error.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const HARNESS = join(REPO, "test", "vm", "run-in-cgroup2-vm.sh");
const GUEST = join("test", "vm", "cgroups-v2-guest.ts");
const RESULT_TAG = "BERTH-CGROUPS-V2-RESULT ";

interface GuestRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runGuest(): Promise<GuestRun> {
  return new Promise((resolve, reject) => {
    // One guest for the whole file: boot costs seconds and Node inside runs 20-30x slower (TCG).
    const child = spawn(HARNESS, ["--", process.execPath, "--import", "tsx", GUEST], {
      cwd: REPO,
      env: { ...process.env, VM_TIMEOUT: process.env.VM_TIMEOUT ?? "600" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** What test/vm/cgroups-v2-guest.ts prints. */
interface GuestResult {
  kernel: string;
  mode: string;
  oom: { signal: string | number | null; survived: boolean; oomKills: number; memoryMax: string; swapMax: string };
  pids: { forked: number; allForked: boolean; cantFork: boolean; current: number; limit: number | null; emptyAfterKillAll: boolean };
  cpu: { cpuMax: string; weight: string; usageNs: number; throttledPeriods: number; throttledTimeNs: number; wallNs: number };
  freeze: { frozen: boolean; eventsFrozen: boolean; usageStillWhileFrozen: boolean; thawed: boolean; resumed: boolean };
  io: { device: string; ioMax: string; writeBytes: number; swapMax: string };
  destroy: { refusedWhileBusy: boolean; removed: boolean[] };
  devices: { out: string };
  rootRemoved: boolean;
  warnings: string[];
  errors: Array<{ step: string; message: string }>;
}

test("cgroup v2 limits take effect in a pure-v2 guest: OOM kill, pids.max, cpu.max, freeze, io.max, device rules, destroy", async (t) => {
  const run = await runGuest();
  const line = run.stdout.split("\n").find((l) => l.startsWith(RESULT_TAG));
  // No silent skip: a guest that did not boot or a script that crashed fails with what it said.
  assert.ok(
    run.code === 0 && line,
    `the cgroup v2 guest failed (harness exit ${run.code}; 124 = VM_TIMEOUT, 125 = VM setup failed)\n--- stderr:\n${run.stderr}\n--- stdout:\n${run.stdout}`,
  );
  const r = JSON.parse(line.slice(RESULT_TAG.length)) as GuestResult;
  t.diagnostic(`guest kernel ${r.kernel}`);
  for (const w of r.warnings) t.diagnostic(`guest warning: ${w}`);
  assert.deepEqual(r.errors, [], "every step ran without error");
  assert.equal(r.mode, "unified", "the guest has only cgroup v2");

  // memory.max 32M: the shell building a 100 MB string is killed by the OOM killer, and counted.
  assert.equal(r.oom.signal, "SIGKILL");
  assert.equal(r.oom.survived, false);
  assert.ok(r.oom.oomKills >= 1, `memory.events oom_kill = ${r.oom.oomKills}`);
  assert.equal(r.oom.memoryMax, String(32 << 20));
  assert.equal(r.oom.swapMax, "0", "OCI swap == limit means no swap: memory.swap.max 0");

  // pids.max 10 against 50 forks; cgroup.kill empties the group of orphaned sleepers.
  assert.ok(r.pids.forked < 50 && !r.pids.allForked && r.pids.cantFork, JSON.stringify(r.pids));
  assert.ok(r.pids.current > 0 && r.pids.current <= 10, `pids.current = ${r.pids.current}`);
  assert.equal(r.pids.limit, 10);
  assert.equal(r.pids.emptyAfterKillAll, true);

  // cpu.max 10 ms per 100 ms: a busy loop is throttled; shares 1024 became cpu.weight 100.
  assert.equal(r.cpu.cpuMax, "10000 100000");
  assert.equal(r.cpu.weight, "100");
  assert.ok(r.cpu.throttledPeriods > 0 && r.cpu.throttledTimeNs > 0, JSON.stringify(r.cpu));
  assert.ok(r.cpu.usageNs < r.cpu.wallNs / 2, `a capped busy loop used ${r.cpu.usageNs} ns of CPU in ${r.cpu.wallNs} ns`);

  // cgroup.freeze: frozen per cgroup.events, no CPU used while frozen, running again after thaw.
  assert.deepEqual(r.freeze, { frozen: true, eventsFrozen: true, usageStillWhileFrozen: true, thawed: true, resumed: true });

  // io.max on the guest's null block device, and direct writes counted in io.stat.
  assert.equal(r.io.ioMax, `${r.io.device} rbps=max wbps=${4 << 20} riops=max wiops=max`);
  assert.ok(r.io.writeBytes >= 256 * 1024, `io.stat wbytes = ${r.io.writeBytes}`);
  assert.equal(r.io.swapMax, String(32 << 20), "memory+swap 96M over memory 64M is 32M of swap");

  // destroy refuses while a process lives, then every cgroup and berth's root are gone.
  // Device rules through the eBPF program: /dev/null allowed, /dev/zero (no rule) denied.
  assert.equal(r.devices.out, "null-ok\nzero-denied\n");

  assert.equal(r.destroy.refusedWhileBusy, true);
  assert.ok(r.destroy.removed.every(Boolean), JSON.stringify(r.destroy));
  assert.equal(r.rootRemoved, true);
});
