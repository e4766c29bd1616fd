// The conversions between the OCI spec's (v1-shaped) values and what the kernel files take, as
// runc (opencontainers/cgroups) does them, so a bundle gets the same limits under both runtimes.
import { InvalidArgumentError } from "../errors";
import type { LinuxDeviceCgroup } from "./types";

/**
 * cpu.shares [2, 262144] (default 1024) → cpu.weight [1, 10000] (default 100), runc ≥ 1.3.2's
 * quadratic fit in log space, which maps min, default and max onto each other (the older linear
 * formula mapped 1024 to 39). 0 means unset.
 */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612 - 7 / 34;
  return Math.ceil(10 ** exponent);
}

/**
 * OCI memory.swap is memory+swap (v1's memsw); v2's memory.swap.max is swap alone: limit+swap -
 * limit. -1 is "max", 0 is unset. Unlimited memory with swap unset means both unlimited, as on v1.
 */
export function memorySwapToV2(swap: number, limit: number): number {
  if (limit === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (limit === -1) return swap;
  if (limit === 0) throw new InvalidArgumentError(`memory.swap ${swap} needs a memory limit: on cgroup v2 swap is set as (memory+swap) - memory`);
  if (limit < 0) throw new InvalidArgumentError(`invalid memory limit ${limit}: only -1 (unlimited) may be negative`);
  if (swap < limit) throw new InvalidArgumentError(`memory.swap ${swap} is below memory.limit ${limit}: OCI swap counts memory plus swap, so it must be at least the limit`);
  return swap - limit;
}

/** blkio weight [10, 1000] → io.weight [1, 10000], linearly (runc's ConvertBlkIOToIOWeightValue). 0 means unset. */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** v2 spelling of a limit (runc's numToStr): -1 is "max", 0 is unset (""), anything else as is. */
export function v2Number(n: number | undefined): string {
  if (n === undefined || n === 0) return "";
  if (n === -1) return "max";
  return String(n);
}

/** "c 1:3 rwm", "a *:* rwm": the line devices.allow/devices.deny take for one OCI rule. */
export function deviceRuleV1(rule: LinuxDeviceCgroup, index = 0): string {
  const type = rule.type ?? "a";
  if (type !== "a" && type !== "b" && type !== "c") {
    throw new InvalidArgumentError(`linux.resources.devices[${index}]: invalid device type ${JSON.stringify(type)} (want "a", "b" or "c")`);
  }
  // runc refuses an empty access rather than guessing, so berth does too.
  const access = rule.access ?? "";
  if (access === "" || !/^[rwm]+$/.test(access)) {
    throw new InvalidArgumentError(`linux.resources.devices[${index}]: access ${JSON.stringify(access)} must be made of r, w and m`);
  }
  const num = (n: number | undefined) => (n === undefined || n < 0 ? "*" : String(n));
  if (type === "a") return `a *:* ${access}`;
  return `${type} ${num(rule.major)}:${num(rule.minor)} ${access}`;
}

/** "2MB" → 2097152, for messages and for matching hugetlb.<size> files. */
export function hugepageSizeBytes(size: string): number {
  const m = /^([1-9][0-9]*)([KMG])B$/.exec(size);
  if (!m) throw new InvalidArgumentError(`hugepage size ${JSON.stringify(size)} is not of the form <n>KB, <n>MB or <n>GB`);
  return Number(m[1]) * { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2] as "K" | "M" | "G"];
}
