// The files a pod's containers share, made as containerd makes them: /etc/resolv.conf from the
// pod's DNSConfig (the host's own when kubelet sends none), /etc/hosts, /etc/hostname, and a
// /dev/shm tmpfs per pod (64 MiB, as Docker and containerd size it) unless the pod uses the
// host's IPC namespace. Kept under the run state dir: none of it outlives a reboot, nor should.
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { type Syscalls, MNT_DETACH, MS } from "../linux/types";
import type { SandboxRecord } from "./types";

const SHM_SIZE = "65536k";

export function resolvConf(dns: CriRequest<cri.DNSConfig> | null | undefined): string | undefined {
  const servers = (dns?.servers ?? []).filter(Boolean) as string[];
  const searches = (dns?.searches ?? []).filter(Boolean) as string[];
  const options = (dns?.options ?? []).filter(Boolean) as string[];
  if (!servers.length && !searches.length && !options.length) return undefined;
  const lines: string[] = [];
  if (searches.length) lines.push(`search ${searches.join(" ")}`);
  for (const s of servers) lines.push(`nameserver ${s}`);
  if (options.length) lines.push(`options ${options.join(" ")}`);
  return `${lines.join("\n")}\n`;
}

/** containerd's default /etc/hosts for a pod in its own network namespace (kubelet usually mounts its own over it). */
export function podHosts(hostname: string, ips: string[]): string {
  const lines = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::0\tip6-mcastprefix",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
  ];
  for (const ip of ips) lines.push(`${ip}\t${hostname}`);
  return `${lines.join("\n")}\n`;
}

export function sandboxFilePaths(stateDir: string, id: string, withShm: boolean): SandboxRecord["files"] {
  const dir = join(stateDir, "pods", id);
  return {
    dir,
    resolvConf: join(dir, "resolv.conf"),
    hosts: join(dir, "hosts"),
    hostname: join(dir, "hostname"),
    shm: withShm ? join(dir, "shm") : undefined,
  };
}

export async function writeSandboxFiles(
  sys: Syscalls,
  files: SandboxRecord["files"],
  opts: { hostname: string; dns: CriRequest<cri.DNSConfig> | null | undefined; hostNetwork: boolean },
): Promise<void> {
  await mkdir(files.dir, { recursive: true, mode: 0o711 });
  const resolv = resolvConf(opts.dns);
  if (resolv) await writeFile(files.resolvConf, resolv, { mode: 0o644 });
  else await copyFile("/etc/resolv.conf", files.resolvConf).catch(() => writeFile(files.resolvConf, "", { mode: 0o644 }));
  if (opts.hostNetwork) await copyFile("/etc/hosts", files.hosts).catch(() => writeFile(files.hosts, podHosts(opts.hostname, []), { mode: 0o644 }));
  else await writeFile(files.hosts, podHosts(opts.hostname, []), { mode: 0o644 });
  await writeFile(files.hostname, `${opts.hostname}\n`, { mode: 0o644 });
  if (files.shm) {
    await mkdir(files.shm, { recursive: true, mode: 0o1777 });
    sys.mount("shm", files.shm, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, `mode=1777,size=${SHM_SIZE}`);
  }
}

/** Adds the pod's IPs to its /etc/hosts once the network is up. */
export async function addPodIps(files: SandboxRecord["files"], hostname: string, ips: string[]): Promise<void> {
  await writeFile(files.hosts, podHosts(hostname, ips), { mode: 0o644 });
}

export function unmountShm(sys: Syscalls, files: SandboxRecord["files"]): void {
  if (!files.shm) return;
  try {
    sys.umount2(files.shm, MNT_DETACH);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== "EINVAL" && code !== "ENOENT") throw err;
  }
}

export async function removeSandboxFiles(sys: Syscalls, files: SandboxRecord["files"]): Promise<void> {
  unmountShm(sys, files);
  await rm(files.dir, { recursive: true, force: true });
}
