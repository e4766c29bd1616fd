// The host's device nodes, as containerd gives them to a privileged container (oci.WithHostDevices):
// every character and block device below /dev, with its mode and owner, except the per-mount
// instances a container gets its own of (pts, shm, mqueue) and the console.
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Device } from "./spec-types";

const SKIP_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);

/** Linux's dev_t split, as glibc's major()/minor() do it. */
export function majorMinor(rdev: number | bigint): { major: number; minor: number } {
  const r = BigInt(rdev);
  return { major: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), minor: Number((r & 0xffn) | ((r >> 12n) & 0xffffff00n)) };
}

export function hostDevices(dir = "/dev"): Device[] {
  const out: Device[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    const path = join(dir, name);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      if (!SKIP_DIRS.has(name)) out.push(...hostDevices(path));
      continue;
    }
    if (name === "console" && dir === "/dev") continue;
    const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : undefined;
    if (!type) continue;
    out.push({ path, type, ...majorMinor(st.rdev), fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
  }
  return out;
}
