import assert from "node:assert/strict";
import { test } from "node:test";
import { cpuStatsV1, cpuStatsV2, ioStatsV1, ioStatsV2, memoryStatsV1, memoryStatsV2, parseLimit } from "../../runtime/cgroups/stats";

const V1_MEMORY_STAT = `cache 1000
rss 2000
inactive_file 300
pgfault 7
pgmajfault 1
hierarchical_memory_limit 33554432
total_cache 40960
total_rss 1048576
total_inactive_file 8192
total_pgfault 120
total_pgmajfault 3
`;

const V2_MEMORY_STAT = `anon 1048576
file 40960
kernel 4096
inactive_anon 0
active_anon 1048576
inactive_file 8192
active_file 32768
pgfault 120
pgmajfault 3
`;

test("v1 memory stats use the hierarchical total_* counters and subtract inactive file pages for the working set", () => {
  const m = memoryStatsV1({
    usage: "1200000\n",
    limit: "33554432\n",
    stat: V1_MEMORY_STAT,
    oomControl: "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
  });
  assert.deepEqual(m, {
    usage: 1200000,
    workingSet: 1200000 - 8192,
    rss: 1048576,
    cache: 40960,
    inactiveFile: 8192,
    limit: 33554432,
    oomKills: 2,
    pageFaults: 120,
    majorPageFaults: 3,
  });
});

test("v2 memory stats read anon/file and count OOM kills from memory.events", () => {
  const m = memoryStatsV2({
    current: "1100000\n",
    max: "max\n",
    stat: V2_MEMORY_STAT,
    events: "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
  });
  assert.equal(m.usage, 1100000);
  assert.equal(m.workingSet, 1100000 - 8192);
  assert.equal(m.rss, 1048576);
  assert.equal(m.cache, 40960);
  assert.equal(m.limit, null, "max is unlimited");
  assert.equal(m.oomKills, 1);
});

test("the working set never goes below zero", () => {
  assert.equal(memoryStatsV2({ current: "100", stat: "inactive_file 4096\n" }).workingSet, 0);
});

test("v1's page-counter maximum and v2's max both read as unlimited", () => {
  assert.equal(parseLimit("9223372036854771712\n"), null);
  assert.equal(parseLimit("max\n"), null);
  assert.equal(parseLimit("10\n"), 10);
  assert.equal(parseLimit(undefined), null);
});

test("v1 cpu stats: nanosecond cpuacct counters, throttling from cpu.stat", () => {
  const c = cpuStatsV1({
    usage: "5000000000\n",
    usageUser: "3000000000\n",
    usageSys: "2000000000\n",
    cpuStat: "nr_periods 50\nnr_throttled 40\nthrottled_time 3500000000\nnr_bursts 0\nburst_time 0\n",
  });
  assert.deepEqual(c, { usageNs: 5e9, userNs: 3e9, systemNs: 2e9, periods: 50, throttledPeriods: 40, throttledTimeNs: 3.5e9 });
});

test("v1 cpu stats fall back to cpuacct.stat clock ticks when usage_user/usage_sys are absent", () => {
  const c = cpuStatsV1({ usage: "10", cpuacctStat: "user 150\nsystem 25\n" });
  assert.equal(c.userNs, 1.5e9);
  assert.equal(c.systemNs, 0.25e9);
  assert.equal(c.throttledPeriods, 0);
});

test("v2 cpu.stat counts microseconds and is converted to nanoseconds", () => {
  const c = cpuStatsV2("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\nnr_throttled 7\nthrottled_usec 900\nnr_bursts 0\nburst_usec 0\n");
  assert.deepEqual(c, { usageNs: 2.5e6, userNs: 2e6, systemNs: 5e5, periods: 10, throttledPeriods: 7, throttledTimeNs: 9e5 });
});

test("v2 io.stat sums bytes and operations over devices", () => {
  const io = ioStatsV2("254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n");
  assert.deepEqual(io, { readBytes: 4097, writeBytes: 8194, readOps: 4, writeOps: 6 });
});

test("v1 blkio recursive files sum Read and Write per device and skip the Total line", () => {
  const bytes = "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 12288\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 12288\n8:0 Read 10\n8:0 Write 0\nTotal 12298\n";
  const ops = "254:0 Read 1\n254:0 Write 2\n254:0 Total 3\nTotal 3\n";
  assert.deepEqual(ioStatsV1({ serviceBytes: bytes, serviced: ops }), { readBytes: 4106, writeBytes: 8192, readOps: 1, writeOps: 2 });
  assert.deepEqual(ioStatsV1({}), { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 });
});
