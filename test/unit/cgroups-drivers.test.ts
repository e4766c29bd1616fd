// The drivers' writes against a fake cgroupfs (plain files in a temporary directory): which file
// gets which value for a given OCI resources object. The kernel's reaction is proven by the
// integration tests (test/integration/cgroups-v1-limits, cgroups-v2-vm).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { openCgroupManager } from "../../runtime/cgroups/detect";
import { FailedPreconditionError, InvalidArgumentError } from "../../runtime/errors";

/** A directory with the given (empty) files, removed when the test ends. */
function fakeCgroup(t: TestContext, files: string[], controllers?: string): string {
  const base = mkdtempSync(join(tmpdir(), "berth-fake-cg-"));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dir = join(base, "ctr");
  mkdirSync(dir);
  for (const f of files) writeFileSync(join(dir, f), "");
  if (controllers !== undefined) writeFileSync(join(dir, "cgroup.controllers"), `${controllers}\n`);
  return dir;
}

const read = (dir: string, f: string) => readFileSync(join(dir, f), "utf8");

test("v2 apply writes runc's values: swap as swap-only, shares as weight, quota and period as cpu.max", (t) => {
  const dir = fakeCgroup(
    t,
    ["memory.max", "memory.swap.max", "memory.low", "pids.max", "cpu.weight", "cpu.max", "io.weight", "cpuset.cpus", "cpuset.mems"],
    "cpuset cpu io memory pids",
  );
  const warnings: string[] = [];
  const m = openCgroupManager({ version: 2, path: "/ctr", dirs: { unified: dir } }, { warn: (w) => warnings.push(w) });
  m.applySync({
    memory: { limit: 32 << 20, swap: 96 << 20, reservation: 16 << 20 },
    pids: { limit: 10 },
    cpu: { shares: 1024, quota: 10000, period: 100000, cpus: "0", mems: "0" },
    blockIO: { weight: 500 },
    hugepageLimits: [{ pageSize: "2MB", limit: 0 }],
  });
  assert.equal(read(dir, "memory.max"), String(32 << 20));
  assert.equal(read(dir, "memory.swap.max"), String(64 << 20), "(limit+swap) - limit");
  assert.equal(read(dir, "memory.low"), String(16 << 20));
  assert.equal(read(dir, "pids.max"), "10");
  assert.equal(read(dir, "cpu.weight"), "100");
  assert.equal(read(dir, "cpu.max"), "10000 100000");
  assert.equal(read(dir, "io.weight"), "4950", "no BFQ here: the converted weight goes to io.weight");
  assert.equal(read(dir, "cpuset.cpus"), "0");
  assert.ok(warnings.some((w) => /hugepage limits skipped: the hugetlb controller is not enabled/.test(w)), warnings.join("; "));
});

test("v2 device rules become an eBPF program the kernel's verifier accepts; a directory that is no cgroup refuses it", (t) => {
  const dir = fakeCgroup(t, [], "");
  const m = openCgroupManager({ version: 2, path: "/ctr", dirs: { unified: dir } }, { warn: () => {} });
  // BPF_PROG_LOAD passes (the verifier took the program); BPF_PROG_ATTACH to a plain directory fails.
  assert.throws(
    () => m.applySync({ devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 3, access: "rw" }] }),
    (e: Error) => /cannot attach the device filter to/.test(e.message) && !/cannot load/.test(e.message),
  );
});

test("v2 apply writes max for an unlimited quota and for negative pids limits", (t) => {
  const dir = fakeCgroup(t, ["cpu.max", "pids.max", "memory.max", "memory.swap.max"], "cpu memory pids");
  const m = openCgroupManager({ version: 2, path: "/ctr", dirs: { unified: dir } }, { warn: () => {} });
  m.applySync({ cpu: { quota: -1, period: 50000 }, pids: { limit: -1 }, memory: { limit: -1 } });
  assert.equal(read(dir, "cpu.max"), "max 50000");
  assert.equal(read(dir, "pids.max"), "max");
  assert.equal(read(dir, "memory.max"), "max");
  assert.equal(read(dir, "memory.swap.max"), "max", "unlimited memory with swap unset: unlimited swap");
});

test("v2 apply refuses a limit whose controller is not enabled, naming it", (t) => {
  const dir = fakeCgroup(t, ["memory.max"], "memory");
  const m = openCgroupManager({ version: 2, path: "/ctr", dirs: { unified: dir } }, { warn: () => {} });
  assert.throws(
    () => m.applySync({ pids: { limit: 10 } }),
    (e: Error) => e instanceof FailedPreconditionError && /the pids controller is not enabled/.test(e.message),
  );
  assert.throws(() => m.applySync({ unified: { "pids.max": "5" } }), /pids controller is not enabled/);
  assert.throws(() => m.applySync({ unified: { "../memory.max": "5" } }), InvalidArgumentError);
});

test("v2 unified entries are written as given and override the converted values", (t) => {
  const dir = fakeCgroup(t, ["memory.max", "memory.high"], "memory");
  const m = openCgroupManager({ version: 2, path: "/ctr", dirs: { unified: dir } }, { warn: () => {} });
  m.applySync({ memory: { limit: 1 << 20 }, unified: { "memory.max": "50000000", "memory.high": "40000000" } });
  assert.equal(read(dir, "memory.max"), "50000000");
  assert.equal(read(dir, "memory.high"), "40000000");
});

test("v1 apply skips a swap limit with a warning when memory.memsw files do not exist", (t) => {
  const mem = fakeCgroup(t, ["memory.limit_in_bytes", "memory.soft_limit_in_bytes"]);
  const pids = fakeCgroup(t, ["pids.max"]);
  const cpu = fakeCgroup(t, ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"]);
  const warnings: string[] = [];
  const m = openCgroupManager({ version: 1, path: "/ctr", dirs: { memory: mem, pids, cpu } }, { warn: (w) => warnings.push(w) });
  m.applySync({ memory: { limit: 32 << 20, swap: 64 << 20, reservation: 1 << 20 }, pids: { limit: -1 }, cpu: { shares: 512, quota: 10000, period: 100000 } });
  assert.equal(read(mem, "memory.limit_in_bytes"), String(32 << 20));
  assert.equal(read(mem, "memory.soft_limit_in_bytes"), String(1 << 20));
  assert.equal(read(pids, "pids.max"), "max");
  assert.equal(read(cpu, "cpu.shares"), "512");
  assert.equal(read(cpu, "cpu.cfs_quota_us"), "10000");
  assert.equal(read(cpu, "cpu.cfs_period_us"), "100000");
  assert.deepEqual(warnings, [`swap limit ${64 << 20} skipped: ${mem}/memory.memsw.limit_in_bytes does not exist (kernel without swap accounting)`]);
});

test("v1 apply refuses unified resources and limits for unmounted controllers", (t) => {
  const mem = fakeCgroup(t, ["memory.limit_in_bytes"]);
  const m = openCgroupManager({ version: 1, path: "/ctr", dirs: { memory: mem } }, { warn: () => {} });
  assert.throws(() => m.applySync({ unified: { "memory.max": "1" } }), /unified needs cgroup v2/);
  assert.throws(
    () => m.applySync({ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 }] } }),
    (e: Error) => e instanceof FailedPreconditionError && /the blkio controller is not mounted/.test(e.message),
  );
});
