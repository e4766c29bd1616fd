// A container's rootfs: its active snapshot mounted by the daemon on the bundle's rootfs
// directory, as containerd and CRI-O mount it before calling the OCI runtime. The mount lives
// in the host's mount namespace, so it outlives a daemon crash with the container using it.
import { mkdirSync, readFileSync } from "node:fs";
import { InternalError } from "../errors";
import { MNT_DETACH, type Syscalls } from "../linux/types";
import type { Mount } from "../snapshot/types";

export function mountRootfs(sys: Syscalls, mounts: Mount[], target: string): void {
  if (mounts.length !== 1 || mounts[0]!.type !== "overlay") {
    throw new InternalError(`rootfs ${target}: expected one overlay mount from the snapshotter, got ${JSON.stringify(mounts.map((m) => m.type))}`);
  }
  mkdirSync(target, { recursive: true, mode: 0o755 });
  if (isMountpoint(target)) return;
  sys.mount("overlay", target, "overlay", 0, mounts[0]!.options.join(","));
}

export function unmountRootfs(sys: Syscalls, target: string): void {
  // An overlay may be stacked twice if a crash interrupted a remount: unmount until none is left.
  for (let i = 0; i < 8 && isMountpoint(target); i++) sys.umount2(target, MNT_DETACH);
}

export function isMountpoint(path: string): boolean {
  const mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
  const escaped = path.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
  return mountinfo.split("\n").some((line) => line.split(" ")[4] === escaped);
}
