// Turning the text of cgroup stat files into CgroupStats, for both versions. Pure functions of the
// files' contents, so fixtures test them; the drivers only read the files.
import type { CgroupCpuStats, CgroupIoStats, CgroupMemoryStats } from "./types";

/** "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control, cpuacct.stat). */
export function parseFlatKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** A single-number file; "max" (v2) and v1's page-counter maximum read as null (unlimited). */
export function parseLimit(text: string | undefined): number | null {
  const t = (text ?? "").trim();
  if (t === "" || t === "max") return null;
  const n = Number(t);
  // v1 spells "unlimited" as PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 bytes with 4 KiB pages).
  if (!Number.isFinite(n) || n >= 2 ** 62) return null;
  return n;
}

export function parseNumber(text: string | undefined): number {
  const n = Number((text ?? "").trim());
  return Number.isFinite(n) ? n : 0;
}

const USER_HZ = 100; // what cpuacct.stat counts in (sysconf(_SC_CLK_TCK) on every Linux architecture berth runs on)

export function cpuStatsV1(files: { usage?: string; usageUser?: string; usageSys?: string; cpuacctStat?: string; cpuStat?: string }): CgroupCpuStats {
  const throttle = parseFlatKeyed(files.cpuStat);
  let userNs: number;
  let systemNs: number;
  if (files.usageUser !== undefined && files.usageSys !== undefined) {
    userNs = parseNumber(files.usageUser);
    systemNs = parseNumber(files.usageSys);
  } else {
    // Older kernels have only cpuacct.stat, in clock ticks.
    const ticks = parseFlatKeyed(files.cpuacctStat);
    userNs = ((ticks.user ?? 0) * 1e9) / USER_HZ;
    systemNs = ((ticks.system ?? 0) * 1e9) / USER_HZ;
  }
  return {
    usageNs: parseNumber(files.usage),
    userNs,
    systemNs,
    periods: throttle.nr_periods ?? 0,
    throttledPeriods: throttle.nr_throttled ?? 0,
    throttledTimeNs: throttle.throttled_time ?? 0,
  };
}

/** v2 cpu.stat counts microseconds. */
export function cpuStatsV2(cpuStat: string | undefined): CgroupCpuStats {
  const s = parseFlatKeyed(cpuStat);
  return {
    usageNs: (s.usage_usec ?? 0) * 1000,
    userNs: (s.user_usec ?? 0) * 1000,
    systemNs: (s.system_usec ?? 0) * 1000,
    periods: s.nr_periods ?? 0,
    throttledPeriods: s.nr_throttled ?? 0,
    throttledTimeNs: (s.throttled_usec ?? 0) * 1000,
  };
}

/** Working set as kubelet/cAdvisor compute it: usage minus inactive file pages, never negative. */
export function workingSet(usage: number, inactiveFile: number): number {
  return Math.max(0, usage - inactiveFile);
}

export function memoryStatsV1(files: { usage?: string; limit?: string; stat?: string; oomControl?: string }): CgroupMemoryStats {
  const stat = parseFlatKeyed(files.stat);
  const usage = parseNumber(files.usage);
  // total_* are hierarchical (this cgroup and its children); the unprefixed ones are local only.
  const inactiveFile = stat.total_inactive_file ?? stat.inactive_file ?? 0;
  return {
    usage,
    workingSet: workingSet(usage, inactiveFile),
    rss: stat.total_rss ?? stat.rss ?? 0,
    cache: stat.total_cache ?? stat.cache ?? 0,
    inactiveFile,
    limit: parseLimit(files.limit),
    // oom_kill appeared in memory.oom_control with Linux 4.13.
    oomKills: parseFlatKeyed(files.oomControl).oom_kill ?? 0,
    pageFaults: stat.total_pgfault ?? stat.pgfault ?? 0,
    majorPageFaults: stat.total_pgmajfault ?? stat.pgmajfault ?? 0,
  };
}

export function memoryStatsV2(files: { current?: string; max?: string; stat?: string; events?: string }): CgroupMemoryStats {
  const stat = parseFlatKeyed(files.stat);
  const usage = parseNumber(files.current);
  const inactiveFile = stat.inactive_file ?? 0;
  return {
    usage,
    workingSet: workingSet(usage, inactiveFile),
    rss: stat.anon ?? 0,
    cache: stat.file ?? 0,
    inactiveFile,
    limit: parseLimit(files.max),
    oomKills: parseFlatKeyed(files.events).oom_kill ?? 0,
    pageFaults: stat.pgfault ?? 0,
    majorPageFaults: stat.pgmajfault ?? 0,
  };
}

/** v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device. */
export function ioStatsV2(ioStat: string | undefined): CgroupIoStats {
  const out: CgroupIoStats = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
  for (const line of (ioStat ?? "").split("\n")) {
    for (const kv of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = kv.split("=");
      const n = Number(v);
      if (!Number.isFinite(n)) continue;
      if (k === "rbytes") out.readBytes += n;
      else if (k === "wbytes") out.writeBytes += n;
      else if (k === "rios") out.readOps += n;
      else if (k === "wios") out.writeOps += n;
    }
  }
  return out;
}

/** v1 blkio *_recursive files: "8:0 Read 4096" per device and operation, then "Total N". */
function sumBlkio(text: string | undefined): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of (text ?? "").split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3 || !f[0].includes(":")) continue;
    if (f[1] === "Read") read += Number(f[2]) || 0;
    else if (f[1] === "Write") write += Number(f[2]) || 0;
  }
  return { read, write };
}

export function ioStatsV1(files: { serviceBytes?: string; serviced?: string }): CgroupIoStats {
  const bytes = sumBlkio(files.serviceBytes);
  const ops = sumBlkio(files.serviced);
  return { readBytes: bytes.read, writeBytes: bytes.write, readOps: ops.read, writeOps: ops.write };
}
