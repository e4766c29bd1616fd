// The cgroup v1 driver: one directory per mounted hierarchy (cpu, memory, pids, ... each where
// /proc/self/mountinfo says), limits written as runc's fs driver writes them. On hybrid hosts the
// controller-less v2 hierarchy is joined as well, for the atomic cgroup.kill.
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FailedPreconditionError, InternalError, InvalidArgumentError } from "../errors";
import {
  allProcs,
  errnoOf,
  fileExists,
  makeDirs,
  readFile,
  readFileIfExists,
  tryRmdir,
  tryWrite,
  writeError,
  writeFile,
  writePid,
} from "./cgroupfs";
import { deviceRuleV1 } from "./convert";
import { cpuStatsV1, ioStatsV1, memoryStatsV1, parseLimit, parseNumber } from "./stats";
import { removeCgroupDirs, signalFrozen, signalNumber } from "./teardown";
import type { CgroupLocation, CgroupManager, CgroupStats, LinuxResources } from "./types";

export class V1Manager implements CgroupManager {
  readonly version = 1 as const;
  readonly path: string;
  readonly location: CgroupLocation;
  private readonly dirs: Record<string, string>;

  constructor(
    location: CgroupLocation,
    private readonly warn: (message: string) => void,
  ) {
    this.dirs = location.dirs;
    this.path = location.path;
    this.location = location;
  }

  /** Co-mounted controllers (cpu,cpuacct) share a directory: each is made, joined and removed once. */
  private uniqueDirs(): string[] {
    return [...new Set(Object.values(this.dirs))];
  }

  private dirFor(controller: string, what: string): string {
    const dir = this.dirs[controller];
    if (!dir) throw new FailedPreconditionError(`cannot set ${what}: the ${controller} controller is not mounted on this host (cgroup v1)`);
    return dir;
  }

  // ------------------------------------------------------------------ create

  createSync(): void {
    const made: string[] = [];
    try {
      for (const dir of this.uniqueDirs()) made.push(...makeDirs(dir));
      if (this.dirs.cpuset) initCpuset(this.dirs.cpuset);
    } catch (err) {
      for (const d of made.reverse()) tryRmdir(d);
      throw err;
    }
  }

  async create(): Promise<void> {
    this.createSync();
  }

  // ------------------------------------------------------------------ apply

  applySync(r: LinuxResources): void {
    if (r.unified && Object.keys(r.unified).length > 0) {
      throw new InvalidArgumentError("linux.resources.unified needs cgroup v2, but this host's controllers are on cgroup v1");
    }
    // runc's fs order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio, rdma.
    this.setCpuset(r);
    this.setDevices(r);
    this.setMemory(r);
    this.setCpu(r);
    this.setPids(r);
    this.setBlkio(r);
    this.setHugetlb(r);
    this.setNetwork(r);
    this.setRdma(r);
  }

  async apply(resources: LinuxResources): Promise<void> {
    this.applySync(resources);
  }

  private setCpuset(r: LinuxResources): void {
    const { cpus, mems } = r.cpu ?? {};
    if (!cpus && !mems) return;
    const dir = this.dirFor("cpuset", "cpuset cpus/mems");
    if (cpus) writeFile(dir, "cpuset.cpus", cpus);
    if (mems) writeFile(dir, "cpuset.mems", mems);
  }

  private setDevices(r: LinuxResources): void {
    const rules = r.devices ?? [];
    if (rules.length === 0) return;
    const dir = this.dirFor("devices", "device rules");
    const lines = rules.map((rule, i) => ({ allow: rule.allow, line: deviceRuleV1(rule, i) }));
    // Written in order, each rule overriding the ones before, which is the spec's reading. runc
    // instead computes the minimal transition from the current list, so a running container never
    // sees a moment of "deny all"; an update here can, between the first and the last write.
    for (const { allow, line } of lines) writeFile(dir, allow ? "devices.allow" : "devices.deny", line);
  }

  private setMemory(r: LinuxResources): void {
    const m = r.memory;
    if (!m) return;
    if (m.kernel !== undefined || m.kernelTCP !== undefined) this.warn("kernel memory limits (memory.kernel, memory.kernelTCP) are ignored, as runc ignores them");
    const limit = m.limit ?? 0;
    let swap = m.swap ?? 0;
    const touches = limit !== 0 || swap !== 0 || (m.reservation ?? 0) !== 0 || m.disableOOMKiller || m.swappiness !== undefined;
    if (!touches) return;
    const dir = this.dirFor("memory", "memory limits");
    const memsw = fileExists(dir, "memory.memsw.limit_in_bytes");
    // Unlimited memory with swap unset means unlimited swap too (where swap is accounted at all).
    if (limit === -1 && swap === 0 && memsw) swap = -1;
    const setLimit = () => {
      if (limit === 0) return;
      const err = tryWrite(dir, "memory.limit_in_bytes", String(limit));
      if (!err) return;
      if (errnoOf(err) === "EBUSY") {
        const usage = readFileIfExists(dir, "memory.usage_in_bytes")?.trim();
        const peak = readFileIfExists(dir, "memory.max_usage_in_bytes")?.trim();
        throw new FailedPreconditionError(`cannot set memory limit to ${limit} on ${dir}: the kernel could not reclaim enough (current usage ${usage}, peak ${peak})`, {
          cause: err,
        });
      }
      throw writeError(`${dir}/memory.limit_in_bytes`, String(limit), err);
    };
    const setSwap = () => {
      if (swap === 0) return;
      if (!memsw) {
        this.warn(`swap limit ${swap} skipped: ${dir}/memory.memsw.limit_in_bytes does not exist (kernel without swap accounting)`);
        return;
      }
      writeFile(dir, "memory.memsw.limit_in_bytes", String(swap));
    };
    // memsw must stay >= limit at every step: raising both means swap first, lowering both limit first.
    if (limit !== 0 && swap !== 0 && memsw) {
      const current = parseNumber(readFile(dir, "memory.limit_in_bytes"));
      if (swap === -1 || current < swap) {
        setSwap();
        setLimit();
      } else {
        setLimit();
        setSwap();
      }
    } else {
      setLimit();
      setSwap();
    }
    if (m.reservation) writeFile(dir, "memory.soft_limit_in_bytes", String(m.reservation));
    if (m.disableOOMKiller) writeFile(dir, "memory.oom_control", "1");
    if (m.swappiness !== undefined && m.swappiness !== -1) {
      if (m.swappiness < 0 || m.swappiness > 100) throw new InvalidArgumentError(`invalid memory swappiness ${m.swappiness} (valid range is 0-100)`);
      if (fileExists(dir, "memory.swappiness")) writeFile(dir, "memory.swappiness", String(m.swappiness));
      else this.warn(`memory.swappiness ${m.swappiness} skipped: ${dir}/memory.swappiness does not exist`);
    }
  }

  private setCpu(r: LinuxResources): void {
    const c = r.cpu;
    if (!c) return;
    const quota = c.quota ?? 0;
    const touches = (c.shares ?? 0) !== 0 || quota !== 0 || (c.period ?? 0) !== 0 || c.burst !== undefined || c.idle !== undefined || c.realtimeRuntime || c.realtimePeriod;
    if (!touches) return;
    const dir = this.dirFor("cpu", "cpu limits");
    if (c.shares) {
      writeFile(dir, "cpu.shares", String(c.shares));
      // The kernel clamps silently; read back so an out-of-range value is an error, as in runc.
      const got = parseNumber(readFile(dir, "cpu.shares"));
      if (c.shares > got) throw new InvalidArgumentError(`cpu.shares ${c.shares} is too large: the maximum allowed is ${got}`);
      if (c.shares < got) throw new InvalidArgumentError(`cpu.shares ${c.shares} is too small: the minimum allowed is ${got}`);
    }
    // A period or burst can be refused (EINVAL) against the old quota; with a new quota coming, retry after it.
    let periodLater: string | undefined;
    if (c.period) {
      const err = tryWrite(dir, "cpu.cfs_period_us", String(c.period));
      if (err && errnoOf(err) === "EINVAL" && quota !== 0) periodLater = String(c.period);
      else if (err) throw writeError(`${dir}/cpu.cfs_period_us`, String(c.period), err);
    }
    let burstLater: string | undefined;
    if (c.burst !== undefined) {
      const err = tryWrite(dir, "cpu.cfs_burst_us", String(c.burst));
      if (err && errnoOf(err) === "ENOENT") this.warn(`cpu.burst ${c.burst} skipped: this kernel has no cpu.cfs_burst_us`);
      else if (err && errnoOf(err) === "EINVAL" && quota !== 0) burstLater = String(c.burst);
      else if (err) throw writeError(`${dir}/cpu.cfs_burst_us`, String(c.burst), err);
    }
    if (quota !== 0) {
      writeFile(dir, "cpu.cfs_quota_us", String(quota));
      if (periodLater) writeFile(dir, "cpu.cfs_period_us", periodLater);
      if (burstLater) writeFile(dir, "cpu.cfs_burst_us", burstLater);
    }
    if (c.idle !== undefined) writeFile(dir, "cpu.idle", String(c.idle));
    this.setRealtime(dir, c.realtimeRuntime ?? 0, c.realtimePeriod ?? 0);
  }

  private setRealtime(dir: string, runtime: number, period: number): void {
    // rt_period and rt_runtime constrain each other: same retry-after dance as the CFS pair.
    let periodLater: string | undefined;
    if (period !== 0) {
      const err = tryWrite(dir, "cpu.rt_period_us", String(period));
      if (err && errnoOf(err) === "EINVAL" && runtime !== 0) periodLater = String(period);
      else if (err) throw writeError(`${dir}/cpu.rt_period_us`, String(period), err);
    }
    if (runtime !== 0) {
      writeFile(dir, "cpu.rt_runtime_us", String(runtime));
      if (periodLater) writeFile(dir, "cpu.rt_period_us", periodLater);
    }
  }

  private setPids(r: LinuxResources): void {
    const limit = r.pids?.limit ?? 0;
    if (limit === 0) return;
    writeFile(this.dirFor("pids", "the pids limit"), "pids.max", limit > 0 ? String(limit) : "max");
  }

  private setBlkio(r: LinuxResources): void {
    const b = r.blockIO;
    if (!b) return;
    const throttles: Array<[string, Array<{ major: number; minor: number; rate: number }> | undefined]> = [
      ["blkio.throttle.read_bps_device", b.throttleReadBpsDevice],
      ["blkio.throttle.write_bps_device", b.throttleWriteBpsDevice],
      ["blkio.throttle.read_iops_device", b.throttleReadIOPSDevice],
      ["blkio.throttle.write_iops_device", b.throttleWriteIOPSDevice],
    ];
    const anything = (b.weight ?? 0) !== 0 || (b.leafWeight ?? 0) !== 0 || (b.weightDevice?.length ?? 0) > 0 || throttles.some(([, l]) => (l?.length ?? 0) > 0);
    if (!anything) return;
    const dir = this.dirFor("blkio", "block IO limits");
    // CFQ's blkio.weight is gone from current kernels; BFQ offers blkio.bfq.weight instead (runc picks the same way).
    const cfq = fileExists(dir, "blkio.weight");
    const weightFile = cfq ? "blkio.weight" : "blkio.bfq.weight";
    const weightDeviceFile = cfq ? "blkio.weight_device" : "blkio.bfq.weight_device";
    if (b.weight) writeFile(dir, weightFile, String(b.weight));
    if (b.leafWeight) writeFile(dir, "blkio.leaf_weight", String(b.leafWeight));
    for (const wd of b.weightDevice ?? []) {
      if (wd.weight) writeFile(dir, weightDeviceFile, `${wd.major}:${wd.minor} ${wd.weight}`);
      if (wd.leafWeight) writeFile(dir, "blkio.leaf_weight_device", `${wd.major}:${wd.minor} ${wd.leafWeight}`);
    }
    for (const [file, list] of throttles) for (const t of list ?? []) writeFile(dir, file, `${t.major}:${t.minor} ${t.rate}`);
  }

  private setHugetlb(r: LinuxResources): void {
    const limits = r.hugepageLimits ?? [];
    if (limits.length === 0) return;
    const dir = this.dirs.hugetlb;
    if (!dir) {
      this.warn("hugepage limits skipped: the hugetlb controller is not mounted on this host (cgroup v1)");
      return;
    }
    for (const l of limits) {
      const file = `hugetlb.${l.pageSize}.limit_in_bytes`;
      if (!fileExists(dir, file)) throw new InvalidArgumentError(`hugepage size ${l.pageSize} is not supported by this kernel (${dir}/${file} does not exist)`);
      writeFile(dir, file, String(l.limit));
      const rsvd = `hugetlb.${l.pageSize}.rsvd.limit_in_bytes`;
      if (fileExists(dir, rsvd)) writeFile(dir, rsvd, String(l.limit));
    }
  }

  private setNetwork(r: LinuxResources): void {
    const n = r.network;
    if (!n) return;
    if (n.classID !== undefined) {
      if (this.dirs.net_cls) writeFile(this.dirs.net_cls, "net_cls.classid", String(n.classID));
      else this.warn("network classID skipped: the net_cls controller is not mounted on this host");
    }
    for (const p of n.priorities ?? []) {
      if (this.dirs.net_prio) writeFile(this.dirs.net_prio, "net_prio.ifpriomap", `${p.name} ${p.priority}`);
      else this.warn(`network priority for ${p.name} skipped: the net_prio controller is not mounted on this host`);
    }
  }

  private setRdma(r: LinuxResources): void {
    const entries = Object.entries(r.rdma ?? {});
    if (entries.length === 0) return;
    const dir = this.dirFor("rdma", "rdma limits");
    for (const [dev, l] of entries) writeFile(dir, "rdma.max", `${dev} hca_handle=${l.hcaHandles ?? "max"} hca_object=${l.hcaObjects ?? "max"}`);
  }

  // ------------------------------------------------------------------ processes

  addProcessSync(pid: number): void {
    for (const dir of this.uniqueDirs()) writePid(dir, pid);
  }

  async addProcess(pid: number): Promise<void> {
    this.addProcessSync(pid);
  }

  setupSync(resources: LinuxResources | undefined, pid: number): void {
    this.createSync();
    if (resources) this.applySync(resources);
    this.addProcessSync(pid);
  }

  async pids(): Promise<number[]> {
    // Every hierarchy holds the same processes; the freezer's is the one kill --all freezes.
    const dir = this.dirs.freezer ?? this.dirs.pids ?? this.dirs.memory ?? this.uniqueDirs()[0];
    return allProcs(dir);
  }

  async killAll(signal: number | NodeJS.Signals): Promise<void> {
    const sig = signalNumber(signal);
    // On hybrid hosts the v2 hierarchy offers cgroup.kill (5.14+): atomic, forks included.
    const unified = this.dirs.unified;
    if (sig === 9 && unified && fileExists(unified, "cgroup.kill")) {
      writeFile(unified, "cgroup.kill", "1");
      return;
    }
    await signalFrozen(this, sig, this.warn);
  }

  // ------------------------------------------------------------------ freezer

  async freeze(): Promise<void> {
    const dir = this.dirFor("freezer", "the frozen state");
    // runc's recipe: a v1 cgroup can sit in FREEZING while tasks keep arriving, so keep asking,
    // with an occasional thaw and pause to let it settle; give up (thawed) after 1000 tries.
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 49) {
        writeFile(dir, "freezer.state", "THAWED");
        await sleep(10);
      }
      writeFile(dir, "freezer.state", "FROZEN");
      if (i % 25 === 24) await sleep(1);
      const state = readFile(dir, "freezer.state").trim();
      if (state === "FROZEN") return;
      if (state !== "FREEZING") throw new InternalError(`unexpected freezer state ${state} in ${dir} after writing FROZEN`);
    }
    writeFile(dir, "freezer.state", "THAWED");
    throw new FailedPreconditionError(`cannot freeze ${dir}: it stayed FREEZING (processes kept arriving)`);
  }

  async thaw(): Promise<void> {
    writeFile(this.dirFor("freezer", "the frozen state"), "freezer.state", "THAWED");
  }

  async isFrozen(): Promise<boolean> {
    const dir = this.dirs.freezer;
    return dir !== undefined && readFileIfExists(dir, "freezer.state")?.trim() === "FROZEN";
  }

  // ------------------------------------------------------------------ stats, destroy

  async stats(): Promise<CgroupStats> {
    const read = (controller: string, file: string) => {
      const dir = this.dirs[controller];
      return dir ? readFileIfExists(dir, file) : undefined;
    };
    const throttleBytes = read("blkio", "blkio.throttle.io_service_bytes_recursive");
    return {
      cpu: cpuStatsV1({
        usage: read("cpuacct", "cpuacct.usage"),
        usageUser: read("cpuacct", "cpuacct.usage_user"),
        usageSys: read("cpuacct", "cpuacct.usage_sys"),
        cpuacctStat: read("cpuacct", "cpuacct.stat"),
        cpuStat: read("cpu", "cpu.stat"),
      }),
      memory: memoryStatsV1({
        usage: read("memory", "memory.usage_in_bytes"),
        limit: read("memory", "memory.limit_in_bytes"),
        stat: read("memory", "memory.stat"),
        oomControl: read("memory", "memory.oom_control"),
      }),
      pids: { current: parseNumber(read("pids", "pids.current")), limit: parseLimit(read("pids", "pids.max")) },
      // The throttle layer sees every bio whatever the I/O scheduler; BFQ's own files are the fallback.
      io: ioStatsV1(
        throttleBytes !== undefined
          ? { serviceBytes: throttleBytes, serviced: read("blkio", "blkio.throttle.io_serviced_recursive") }
          : { serviceBytes: read("blkio", "blkio.bfq.io_service_bytes_recursive"), serviced: read("blkio", "blkio.bfq.io_serviced_recursive") },
      ),
    };
  }

  async destroy(): Promise<void> {
    await removeCgroupDirs(this.uniqueDirs());
  }
}

/**
 * A new v1 cpuset cgroup starts with empty cpus and mems, and no task can join it until both are
 * set: copy them down from the nearest ancestor that has them (runc's ensureParent).
 */
function initCpuset(dir: string): void {
  const chain: string[] = [];
  for (let d = dir; fileExists(dirname(d), "cpuset.cpus") && d !== "/"; d = dirname(d)) chain.unshift(d);
  for (const d of chain) {
    for (const file of ["cpuset.cpus", "cpuset.mems"]) {
      if ((readFileIfExists(d, file) ?? "").trim() !== "") continue;
      const parent = (readFileIfExists(dirname(d), file) ?? "").trim();
      writeFile(d, file, parent);
    }
  }
}
