// Which cgroup layout the host has, where each hierarchy is mounted (/proc/self/mountinfo), where
// the caller sits in each (/proc/self/cgroup), and the manager that fits: v2 on a unified host, v1
// (with the v2 hierarchy joined too, for cgroup.kill) on hybrid and legacy hosts.
import { readFileSync } from "node:fs";
import { FailedPreconditionError, InvalidArgumentError } from "../errors";
import { createLogger } from "../log";
import { hierarchyDir, pathInHierarchy, resolveCgroupsPath } from "./path";
import type { CgroupHierarchy, CgroupLayout, CgroupLocation, CgroupManager, CgroupManagerOptions } from "./types";
import { V1Manager } from "./v1";
import { V2Manager } from "./v2";

export interface MountInfoEntry {
  root: string;
  mountpoint: string;
  fstype: string;
  superOptions: string[];
  /** Propagation and peer groups: "shared:N", "master:N", "propagate_from:N", "unbindable". */
  optional: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const f = line.split(" ");
    // Optional fields (shared:N master:N) sit between field 6 and the lone "-".
    const sep = f.indexOf("-", 6);
    if (sep < 0 || f.length < sep + 4) continue;
    out.push({
      root: unescapeOctal(f[3]),
      mountpoint: unescapeOctal(f[4]),
      fstype: f[sep + 1],
      superOptions: f[sep + 3].split(","),
      optional: f.slice(6, sep),
    });
  }
  return out;
}

/** /proc/<pid>/cgroup: controller → path; the v2 line ("0::/x") is keyed "". */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) throw new InvalidArgumentError(`invalid /proc/self/cgroup line ${JSON.stringify(line)}: expected id:controllers:path`);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1).replace(/ \(deleted\)$/, "");
    if (controllers === "") out.set("", path);
    else for (const c of controllers.split(",")) out.set(c, path);
  }
  return out;
}

/** Controller names the kernel knows, from /proc/cgroups (subsys_name hierarchy num_cgroups enabled). */
export function parseProcCgroups(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => l.split(/\s+/)[0]);
}

const KNOWN_V1 = ["cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc", "debug"];

function ownPath(cgroups: Map<string, string>, key: string, what: string): string {
  const p = cgroups.get(key);
  if (p === undefined) throw new FailedPreconditionError(`the ${what} is mounted but /proc/self/cgroup has no line for it`);
  return p;
}

/** Prefer the mount that shows the caller's own cgroup, then the first one. */
function pick(mounts: MountInfoEntry[], own: string): MountInfoEntry {
  return mounts.find((m) => m.root === "/" || own === m.root || own.startsWith(`${m.root}/`)) ?? mounts[0];
}

/** The layout from the three /proc files' contents (pure, so fixtures can test it). */
export function layoutFrom(mountinfo: string, procSelfCgroup: string, procCgroups = ""): CgroupLayout {
  const known = new Set([...KNOWN_V1, ...parseProcCgroups(procCgroups)]);
  const mounts = parseMountinfo(mountinfo);
  const cgroups = parseProcCgroup(procSelfCgroup);

  const byHierarchy = new Map<string, MountInfoEntry[]>();
  for (const m of mounts.filter((x) => x.fstype === "cgroup")) {
    const controllers = m.superOptions.filter((o) => known.has(o) || o.startsWith("name="));
    if (controllers.length === 0) continue;
    const key = controllers.sort().join(",");
    byHierarchy.set(key, [...(byHierarchy.get(key) ?? []), m]);
  }
  const v1: Record<string, CgroupHierarchy> = {};
  for (const [key, ms] of byHierarchy) {
    const controllers = key.split(",");
    const own = ownPath(cgroups, controllers[0], `cgroup v1 hierarchy ${key}`);
    const m = pick(ms, own);
    const h: CgroupHierarchy = { controllers, mountpoint: m.mountpoint, root: m.root, own };
    for (const c of controllers) v1[c] = h;
  }

  const v2Mounts = mounts.filter((x) => x.fstype === "cgroup2");
  let unified: CgroupHierarchy | undefined;
  if (v2Mounts.length > 0) {
    const own = ownPath(cgroups, "", "cgroup v2 hierarchy");
    const m = pick(v2Mounts, own);
    unified = { controllers: [], mountpoint: m.mountpoint, root: m.root, own };
  }

  const hasV1Controllers = Object.keys(v1).some((c) => !c.startsWith("name="));
  if (hasV1Controllers) return { mode: unified ? "hybrid" : "legacy", unified, v1 };
  if (!unified) throw new FailedPreconditionError("no cgroup filesystem is mounted: /proc/self/mountinfo has neither cgroup2 nor a cgroup v1 controller");
  return { mode: "unified", unified, v1: {} };
}

export function detectCgroupLayout(): CgroupLayout {
  let procCgroups = "";
  try {
    procCgroups = readFileSync("/proc/cgroups", "utf8");
  } catch {
    // Kernels without CONFIG_CGROUP_V1 may not have it; the built-in controller list covers v1 then.
  }
  return layoutFrom(readFileSync("/proc/self/mountinfo", "utf8"), readFileSync("/proc/self/cgroup", "utf8"), procCgroups);
}

/** Where the cgroup for `cgroupsPath` lives on this layout, before anything is created. */
export function locateCgroup(cgroupsPath: string | undefined, layout: CgroupLayout, opts: { root?: string; name?: string } = {}): CgroupLocation {
  const resolved = resolveCgroupsPath(cgroupsPath, opts);
  const at = (h: CgroupHierarchy) => pathInHierarchy(resolved, h.own);
  if (layout.mode === "unified") {
    const h = layout.unified!;
    return { version: 2, path: at(h), dirs: { unified: hierarchyDir(h, at(h)) } };
  }
  const dirs: Record<string, string> = {};
  for (const [controller, h] of Object.entries(layout.v1)) dirs[controller] = hierarchyDir(h, at(h));
  // Joining the (controller-less) v2 hierarchy too gives kill --all the atomic cgroup.kill, as runc does.
  if (layout.unified) dirs.unified = hierarchyDir(layout.unified, at(layout.unified));
  const main = layout.v1.memory ?? Object.values(layout.v1)[0];
  return { version: 1, path: at(main), dirs };
}

/** A manager for linux.cgroupsPath (relative to berth's root, or absolute), on the driver the host needs. */
export function newCgroupManager(cgroupsPath: string | undefined, opts: CgroupManagerOptions = {}): CgroupManager {
  const layout = opts.layout ?? detectCgroupLayout();
  return openCgroupManager(locateCgroup(cgroupsPath, layout, opts), opts);
}

/** Reopens a cgroup from its recorded location (state.json), whatever cgroup the caller is in now. */
export function openCgroupManager(location: CgroupLocation, opts: Pick<CgroupManagerOptions, "warn"> = {}): CgroupManager {
  const warn = opts.warn ?? ((m: string) => createLogger().warn(m, { component: "cgroups" }));
  return location.version === 2 ? new V2Manager(location, warn) : new V1Manager(location, warn);
}
