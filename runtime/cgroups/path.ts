// Where a container's cgroup goes, by runc's cgroupfs rules with berth's root: an absolute
// linux.cgroupsPath is taken from each hierarchy's root, a relative one goes below berth's root
// cgroup, and berth's root (when relative) below the caller's own cgroup in each hierarchy. Paths
// that would climb out ("..") and systemd-driver paths ("slice:prefix:name") are refused, not cleaned.
import { InvalidArgumentError } from "../errors";
import type { CgroupHierarchy } from "./types";

export const DEFAULT_CGROUP_ROOT = "berth";

export interface ResolvedCgroupPath {
  /** "own": below the caller's own cgroup in each hierarchy; "absolute": from each hierarchy's root. */
  base: "own" | "absolute";
  /** Normalised, starts with "/". */
  path: string;
}

/** Splits and checks a path; `what` names it in errors. */
function components(p: string, what: string): string[] {
  if (p.includes("\0")) throw new InvalidArgumentError(`${what} ${JSON.stringify(p)} contains a NUL byte`);
  if (p.includes(":")) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(p)} looks like a systemd cgroup ("slice:prefix:name"): berth uses the cgroupfs driver; give a path such as "/berth/<id>" or "<parent>/<id>"`,
    );
  }
  const parts = p.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(p)} contains "..": berth refuses cgroup paths that could leave their root`);
  }
  return parts;
}

/**
 * Resolves linux.cgroupsPath against berth's root. An empty cgroupsPath uses `name` (the container
 * id) below the root, as runc does.
 */
export function resolveCgroupsPath(cgroupsPath: string | undefined, opts: { root?: string; name?: string } = {}): ResolvedCgroupPath {
  const given = cgroupsPath ?? "";
  if (given.startsWith("/")) {
    const parts = components(given, "cgroupsPath");
    if (parts.length === 0) throw new InvalidArgumentError(`cgroupsPath "${given}" is the root cgroup: give the container a cgroup of its own`);
    return { base: "absolute", path: `/${parts.join("/")}` };
  }
  const root = opts.root ?? DEFAULT_CGROUP_ROOT;
  const rootParts = components(root, "cgroup root");
  let rel = components(given, "cgroupsPath");
  if (rel.length === 0) {
    if (!opts.name) throw new InvalidArgumentError("cgroupsPath is empty and no container name was given to name the cgroup");
    rel = components(opts.name, "cgroup name");
  }
  if (rel.length === 0) throw new InvalidArgumentError(`cgroup name "${opts.name}" is empty after normalisation`);
  const path = `/${[...rootParts, ...rel].join("/")}`;
  return { base: root.startsWith("/") ? "absolute" : "own", path };
}

/** The cgroup's path inside one hierarchy, given the caller's own cgroup there. */
export function pathInHierarchy(resolved: ResolvedCgroupPath, own: string): string {
  if (resolved.base === "absolute") return resolved.path;
  return own === "/" ? resolved.path : `${own.replace(/\/+$/, "")}${resolved.path}`;
}

/** The directory of a cgroup path in a mounted hierarchy (the mount may show only a sub-tree). */
export function hierarchyDir(h: CgroupHierarchy, cgroupPath: string): string {
  const root = h.root === "/" ? "" : h.root.replace(/\/+$/, "");
  if (root !== "" && cgroupPath !== root && !cgroupPath.startsWith(`${root}/`)) {
    throw new InvalidArgumentError(
      `cgroup ${cgroupPath} is outside the part of the hierarchy mounted at ${h.mountpoint} (which shows ${h.root})`,
    );
  }
  const rest = cgroupPath.slice(root.length);
  return rest === "" || rest === "/" ? h.mountpoint : `${h.mountpoint.replace(/\/+$/, "")}${rest}`;
}

/**
 * The cgroupsPath for a CRI container or sandbox: kubelet's cgroup_parent taken relative to berth's
 * root (so "/kubepods/burstable/pod1" lands in <root>/kubepods/burstable/pod1/<name>). Parents from
 * kubelet's systemd driver ("kubepods-burstable-pod1.slice") are refused: configure kubelet with
 * cgroupDriver: cgroupfs.
 */
export function criCgroupsPath(cgroupParent: string | undefined, name: string): string {
  const parent = cgroupParent ?? "";
  if (/\.slice(\/|$)/.test(parent)) {
    throw new InvalidArgumentError(
      `cgroup_parent ${JSON.stringify(parent)} is a systemd slice: berth uses the cgroupfs driver; set kubelet's cgroupDriver to "cgroupfs"`,
    );
  }
  const parts = [...components(parent, "cgroup_parent"), ...components(name, "cgroup name")];
  if (parts.length === 0) throw new InvalidArgumentError("cgroup name is empty");
  return parts.join("/");
}
