// The cgroup v2 (unified hierarchy) driver: one directory, controllers enabled from above through
// cgroup.subtree_control, limits written as runc's fs2 driver writes them.
//
// Device rules: v2 has no devices.allow; device access is decided by an eBPF program of type
// BPF_CGROUP_DEVICE attached to the cgroup, which v2-devices.ts compiles from the rules, as runc's
// devicefilter does.
import { dirname } from "node:path";
import { attachDeviceFilter } from "./v2-devices";
import { setTimeout as sleep } from "node:timers/promises";
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "../errors";
import {
  allProcs,
  errnoOf,
  fileExists,
  makeDirs,
  readFile,
  readFileIfExists,
  tryRmdir,
  tryWrite,
  writePid,
  writeError,
  writeFile,
  writeLines,
} from "./cgroupfs";
import { blkioWeightToIoWeight, cpuSharesToWeight, memorySwapToV2, v2Number } from "./convert";
import { cpuStatsV2, ioStatsV2, memoryStatsV2, parseLimit, parseNumber } from "./stats";
import { removeCgroupDirs, signalFrozen, signalNumber } from "./teardown";
import type { CgroupLocation, CgroupManager, CgroupStats, LinuxResources, LinuxThrottleDevice } from "./types";

const FREEZE_WAIT_MS = 10_000;

function words(text: string | undefined): string[] {
  return (text ?? "").trim().split(/\s+/).filter(Boolean);
}

export class V2Manager implements CgroupManager {
  readonly version = 2 as const;
  readonly path: string;
  readonly location: CgroupLocation;
  private readonly dir: string;
  /** Why a controller could not be enabled on the way down, for the error apply gives later. */
  private readonly notEnabled = new Map<string, string>();

  constructor(
    location: CgroupLocation,
    private readonly warn: (message: string) => void,
  ) {
    const dir = location.dirs.unified;
    if (!dir) throw new InvalidArgumentError("a cgroup v2 location needs dirs.unified");
    this.dir = dir;
    this.path = location.path;
    this.location = location;
  }

  // ------------------------------------------------------------------ create

  createSync(): void {
    // Ancestors from the hierarchy's root (the highest directory with cgroup.controllers) down to
    // the leaf's parent, computed before mkdir: directories still to be made are included.
    const chain: string[] = [];
    for (let d = dirname(this.dir); ; d = dirname(d)) {
      chain.unshift(d);
      if (d === "/" || (fileExists(d, "cgroup.controllers") && !fileExists(dirname(d), "cgroup.controllers"))) break;
    }
    const made = makeDirs(this.dir);
    try {
      // Enable, in every ancestor, whatever that ancestor can offer, so the leaf gets every
      // controller (runc does the same). Only missing ones are written: an ancestor with processes
      // of its own (v2's no-internal-processes rule) refuses, and one that already delegates is fine.
      for (const level of chain) this.enableControllers(level);
    } catch (err) {
      for (const d of made.reverse()) tryRmdir(d);
      throw err;
    }
  }

  private enableControllers(level: string): void {
    const available = words(readFileIfExists(level, "cgroup.controllers"));
    const enabled = new Set(words(readFileIfExists(level, "cgroup.subtree_control")));
    for (const c of available) {
      if (enabled.has(c)) continue;
      const err = tryWrite(level, "cgroup.subtree_control", `+${c}`);
      if (!err) continue;
      const why =
        errnoOf(err) === "EBUSY"
          ? `${level} has processes of its own, and cgroup v2 lets a non-root cgroup with processes delegate no controller: place berth's root outside the caller's cgroup or run berth in a leaf cgroup`
          : `writing +${c} to ${level}/cgroup.subtree_control failed: ${errnoOf(err)}`;
      this.notEnabled.set(c, why);
    }
  }

  async create(): Promise<void> {
    this.createSync();
  }

  // ------------------------------------------------------------------ apply

  private need(available: Set<string>, controller: string, what: string): void {
    if (available.has(controller)) return;
    const why = this.notEnabled.get(controller);
    throw new FailedPreconditionError(
      `cannot set ${what}: the ${controller} controller is not enabled for ${this.dir}${why ? ` (${why})` : " (the parent's cgroup.subtree_control lacks it)"}`,
    );
  }

  applySync(r: LinuxResources): void {
    const available = new Set(words(readFile(this.dir, "cgroup.controllers")));
    // runc's fs2 order: pids, memory, io, cpu, devices, cpuset, hugetlb, rdma, then unified overrides.
    this.setPids(available, r);
    this.setMemory(available, r);
    this.setIo(available, r);
    this.setCpu(available, r);
    if (r.devices && r.devices.length > 0) attachDeviceFilter(this.dir, r.devices);
    this.setCpuset(available, r);
    this.setHugetlb(available, r);
    this.setRdma(available, r);
    if (r.network && (r.network.classID !== undefined || (r.network.priorities?.length ?? 0) > 0)) {
      this.warn("network classID/priorities are cgroup v1 net_cls/net_prio settings with no cgroup v2 file: ignored");
    }
    this.setUnified(available, r.unified);
  }

  async apply(resources: LinuxResources): Promise<void> {
    this.applySync(resources);
  }

  private setPids(available: Set<string>, r: LinuxResources): void {
    const limit = r.pids?.limit ?? 0;
    if (limit === 0) return;
    this.need(available, "pids", "the pids limit");
    writeFile(this.dir, "pids.max", limit > 0 ? String(limit) : "max");
  }

  private setMemory(available: Set<string>, r: LinuxResources): void {
    const m = r.memory;
    if (!m) return;
    if (m.kernel !== undefined || m.kernelTCP !== undefined) this.warn("kernel memory limits (memory.kernel, memory.kernelTCP) are ignored, as runc ignores them");
    if (m.swappiness !== undefined && m.swappiness >= 0 && m.swappiness <= 100) this.warn("memory.swappiness has no cgroup v2 file: ignored");
    if (m.disableOOMKiller) this.warn("memory.disableOOMKiller has no cgroup v2 equivalent: ignored");
    const limit = m.limit ?? 0;
    const swap = m.swap ?? 0;
    const reservation = m.reservation ?? 0;
    if (limit === 0 && swap === 0 && reservation === 0) return;
    this.need(available, "memory", "memory limits");
    if (m.checkBeforeUpdate && limit > 0) {
      const usage = parseNumber(readFileIfExists(this.dir, "memory.current"));
      if (limit < usage) throw new FailedPreconditionError(`rejecting memory limit ${limit} below current usage ${usage} of ${this.dir} (checkBeforeUpdate)`);
    }
    const swapV2 = memorySwapToV2(swap, limit);
    let swapStr = v2Number(swapV2);
    // memory == memory+swap: no swap at all, which v2Number would read as "unset".
    if (swapStr === "" && swapV2 === 0 && swap > 0) swapStr = "0";
    if (swapStr !== "") {
      const err = tryWrite(this.dir, "memory.swap.max", swapStr);
      if (err && errnoOf(err) === "ENOENT") {
        // No swap accounting in this kernel: "max" and "0" are what it does anyway (runc stays silent).
        if (swapStr !== "max" && swapStr !== "0") this.warn(`swap limit ${swapStr} skipped: ${this.dir}/memory.swap.max does not exist (kernel without swap accounting)`);
      } else if (err) {
        throw writeError(`${this.dir}/memory.swap.max`, swapStr, err);
      }
    }
    const max = v2Number(limit);
    if (max !== "") writeFile(this.dir, "memory.max", max);
    const low = v2Number(reservation);
    if (low !== "") writeFile(this.dir, "memory.low", low);
  }

  private setIo(available: Set<string>, r: LinuxResources): void {
    const b = r.blockIO;
    if (!b) return;
    const throttles: Array<[string, LinuxThrottleDevice[] | undefined]> = [
      ["rbps", b.throttleReadBpsDevice],
      ["wbps", b.throttleWriteBpsDevice],
      ["riops", b.throttleReadIOPSDevice],
      ["wiops", b.throttleWriteIOPSDevice],
    ];
    const anyThrottle = throttles.some(([, list]) => (list?.length ?? 0) > 0);
    const weight = b.weight ?? 0;
    const weightDevices = b.weightDevice ?? [];
    if (weight === 0 && weightDevices.length === 0 && !anyThrottle) return;
    this.need(available, "io", "block IO limits");
    if (b.leafWeight) this.warn("blockIO.leafWeight has no cgroup v2 file: ignored");
    // BFQ's io.bfq.weight takes the v1 range as is; without BFQ, io.weight takes the converted value.
    const bfq = fileExists(this.dir, "io.bfq.weight");
    if (weight !== 0) {
      if (weight < 10 || weight > 1000) throw new InvalidArgumentError(`blockIO.weight ${weight} is outside 10-1000`);
      if (bfq) writeFile(this.dir, "io.bfq.weight", String(weight));
      else writeFile(this.dir, "io.weight", String(blkioWeightToIoWeight(weight)));
    }
    for (const wd of weightDevices) {
      if (!wd.weight) continue;
      if (bfq) writeFile(this.dir, "io.bfq.weight", `${wd.major}:${wd.minor} ${wd.weight}`);
      else this.warn(`per-device weight for ${wd.major}:${wd.minor} skipped: it needs the BFQ I/O scheduler (io.bfq.weight), absent here`);
    }
    for (const [key, list] of throttles) {
      // 0 means "no limit" in v1's files; v2 refuses 0 (ERANGE), so berth spells it "max".
      for (const t of list ?? []) writeFile(this.dir, "io.max", `${t.major}:${t.minor} ${key}=${t.rate === 0 ? "max" : t.rate}`);
    }
  }

  private setCpu(available: Set<string>, r: LinuxResources): void {
    const c = r.cpu;
    if (!c) return;
    if (c.realtimeRuntime || c.realtimePeriod) this.warn("cpu.realtimeRuntime/realtimePeriod have no cgroup v2 file: ignored");
    const weight = cpuSharesToWeight(c.shares ?? 0);
    const quota = c.quota ?? 0;
    const period = c.period ?? 0;
    if (weight === 0 && quota === 0 && period === 0 && c.burst === undefined && c.idle === undefined) return;
    this.need(available, "cpu", "cpu limits");
    if (weight !== 0) writeFile(this.dir, "cpu.weight", String(weight));
    if (c.idle !== undefined) writeFile(this.dir, "cpu.idle", String(c.idle));
    let burstLater: string | undefined;
    if (c.burst !== undefined) {
      const burst = String(c.burst);
      const err = tryWrite(this.dir, "cpu.max.burst", burst);
      // A burst above the current quota is refused until the new quota is in: retry after it (runc).
      if (err && errnoOf(err) === "EINVAL" && quota !== 0) burstLater = burst;
      else if (err && errnoOf(err) === "ENOENT") this.warn(`cpu.burst ${burst} skipped: this kernel has no cpu.max.burst`);
      else if (err) throw writeError(`${this.dir}/cpu.max.burst`, burst, err);
    }
    if (quota !== 0 || period !== 0) {
      let max = quota > 0 ? String(quota) : "max";
      if (period !== 0) max += ` ${period}`;
      writeFile(this.dir, "cpu.max", max);
      if (burstLater !== undefined) writeFile(this.dir, "cpu.max.burst", burstLater);
    }
  }

  private setCpuset(available: Set<string>, r: LinuxResources): void {
    const { cpus, mems } = r.cpu ?? {};
    if (!cpus && !mems) return;
    this.need(available, "cpuset", "cpuset cpus/mems");
    if (cpus) writeFile(this.dir, "cpuset.cpus", cpus);
    if (mems) writeFile(this.dir, "cpuset.mems", mems);
  }

  private setHugetlb(available: Set<string>, r: LinuxResources): void {
    const limits = r.hugepageLimits ?? [];
    if (limits.length === 0) return;
    if (!available.has("hugetlb")) {
      this.warn(`hugepage limits skipped: the hugetlb controller is not enabled for ${this.dir}`);
      return;
    }
    for (const l of limits) {
      const file = `hugetlb.${l.pageSize}.max`;
      if (!fileExists(this.dir, file)) throw new InvalidArgumentError(`hugepage size ${l.pageSize} is not supported by this kernel (${this.dir}/${file} does not exist)`);
      writeFile(this.dir, file, String(l.limit));
      // Reservations are limited too where the kernel accounts them (5.7+), as runc does.
      const rsvd = `hugetlb.${l.pageSize}.rsvd.max`;
      if (fileExists(this.dir, rsvd)) writeFile(this.dir, rsvd, String(l.limit));
    }
  }

  private setRdma(available: Set<string>, r: LinuxResources): void {
    const entries = Object.entries(r.rdma ?? {});
    if (entries.length === 0) return;
    this.need(available, "rdma", "rdma limits");
    for (const [dev, l] of entries) {
      writeFile(this.dir, "rdma.max", `${dev} hca_handle=${l.hcaHandles ?? "max"} hca_object=${l.hcaObjects ?? "max"}`);
    }
  }

  private setUnified(available: Set<string>, unified: Record<string, string> | undefined): void {
    for (const [key, value] of Object.entries(unified ?? {})) {
      if (key.includes("/") || key === "." || key === "..") throw new InvalidArgumentError(`unified resource ${JSON.stringify(key)} must be a file name (no slashes)`);
      const dot = key.indexOf(".");
      if (dot <= 0) throw new InvalidArgumentError(`unified resource ${JSON.stringify(key)} must be of the form <controller>.<parameter>`);
      const controller = key.slice(0, dot);
      if (controller !== "cgroup" && !available.has(controller)) {
        throw new FailedPreconditionError(`unified resource ${JSON.stringify(key)} cannot be set: the ${controller} controller is not enabled for ${this.dir}`);
      }
      writeLines(this.dir, key, value);
    }
  }

  // ------------------------------------------------------------------ processes

  addProcessSync(pid: number): void {
    writePid(this.dir, pid);
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
    return allProcs(this.dir);
  }

  async killAll(signal: number | NodeJS.Signals): Promise<void> {
    const sig = signalNumber(signal);
    // cgroup.kill (5.14+) kills the whole subtree atomically, forks included.
    if (sig === 9 && fileExists(this.dir, "cgroup.kill")) {
      writeFile(this.dir, "cgroup.kill", "1");
      return;
    }
    await signalFrozen(this, sig, this.warn);
  }

  // ------------------------------------------------------------------ freezer

  private frozenEvent(): boolean | undefined {
    const events = readFileIfExists(this.dir, "cgroup.events");
    const m = /^frozen (\d)$/m.exec(events ?? "");
    return m ? m[1] === "1" : undefined;
  }

  private async setFrozen(frozen: boolean): Promise<void> {
    if (!fileExists(this.dir, "cgroup.freeze")) {
      throw new FailedPreconditionError(`cannot ${frozen ? "freeze" : "thaw"} ${this.dir}: no cgroup.freeze (the v2 freezer needs Linux 5.2)`);
    }
    writeFile(this.dir, "cgroup.freeze", frozen ? "1" : "0");
    // The write only asks; the kernel reports in cgroup.events once every task has stopped.
    const deadline = Date.now() + FREEZE_WAIT_MS;
    while (this.frozenEvent() !== frozen) {
      if (Date.now() > deadline) {
        if (frozen) writeFile(this.dir, "cgroup.freeze", "0");
        throw new UnavailableError(`${this.dir} did not report "frozen ${frozen ? 1 : 0}" in cgroup.events within ${FREEZE_WAIT_MS / 1000} s`);
      }
      await sleep(10);
    }
  }

  freeze(): Promise<void> {
    return this.setFrozen(true);
  }

  thaw(): Promise<void> {
    return this.setFrozen(false);
  }

  async isFrozen(): Promise<boolean> {
    return this.frozenEvent() === true;
  }

  // ------------------------------------------------------------------ stats, destroy

  async stats(): Promise<CgroupStats> {
    const read = (f: string) => readFileIfExists(this.dir, f);
    return {
      cpu: cpuStatsV2(read("cpu.stat")),
      memory: memoryStatsV2({ current: read("memory.current"), max: read("memory.max"), stat: read("memory.stat"), events: read("memory.events") }),
      pids: { current: parseNumber(read("pids.current")), limit: parseLimit(read("pids.max")) },
      io: ioStatsV2(read("io.stat")),
    };
  }

  async destroy(): Promise<void> {
    await removeCgroupDirs([this.dir]);
  }
}
