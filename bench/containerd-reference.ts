// The reference side of the CRI benchmarks: Debian's containerd (CRI plugin, runc) started with
// ../shared/anchors/containerd/start.sh, the busybox and pause images it and berth pull from a
// local registry, and the removal of every pod through CRI at the end.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { CriClient } from "../cri/client";
import type * as cri from "../runtime/api/cri-v1";
import { busyboxRootfs, writeImageToLayout } from "../runtime/image/build";
import { type HostNetworkSnapshot, restoreHostNetwork } from "../test/support/host-network";
import { forceClean } from "../test/support/pods";
import { cgroupDirsBelowSelf } from "../test/support/runtime-pair";
import { pushLayout } from "../test/support/test-images";

const ANCHORS = "/work/shared/anchors/containerd";

/** busybox for the pods, a pause-like image for containerd's sandboxes, in `registryHost`. */
export async function pushBenchImages(work: string, registryHost: string): Promise<{ image: string; pause: string }> {
  await writeImageToLayout(join(work, "busybox"), { config: { Env: ["PATH=/bin"], Cmd: ["sh"] }, layers: [{ entries: busyboxRootfs() }] }, { tag: "v1" });
  await writeImageToLayout(join(work, "pause"), { config: { Env: ["PATH=/bin"], Entrypoint: ["/bin/sleep"], Cmd: ["2147483647"] }, layers: [{ entries: busyboxRootfs() }] }, { tag: "v1" });
  await pushLayout(join(work, "busybox"), "v1", registryHost, "bench/busybox");
  await pushLayout(join(work, "pause"), "v1", registryHost, "bench/pause");
  return { image: `${registryHost}/bench/busybox:v1`, pause: `${registryHost}/bench/pause:v1` };
}

export interface ContainerdReference {
  client: CriClient;
  socket: string;
  pid: number;
  /** Stops containerd (after its pods were removed through CRI); safe to call twice. */
  stop(): void;
}

/** Installs containerd when missing, then starts it in `base` with the anchors' script. */
export function startContainerd(base: string, pauseImage: string, registryHost: string): ContainerdReference {
  if (!existsSync(join(ANCHORS, "start.sh"))) throw new Error(`${ANCHORS}/start.sh is missing`);
  if (!existsSync("/usr/bin/containerd")) {
    console.error("installing containerd (the reference) with apt-get");
    execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", "containerd"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  }
  execFileSync("sh", [join(ANCHORS, "start.sh"), base, pauseImage, registryHost], { stdio: "inherit" });
  const socket = join(base, "state", "containerd.sock");
  const client = new CriClient(socket);
  let stopped = false;
  return {
    client,
    socket,
    pid: Number(readFileSync(join(base, "containerd.pid"), "utf8")),
    stop: () => {
      if (stopped) return;
      stopped = true;
      client.close();
      try {
        execFileSync("sh", [join(ANCHORS, "stop.sh"), base], { stdio: "ignore" });
      } catch {}
    },
  };
}

/** Stops and removes every pod each runtime holds; failures are left to the final force-clean. */
export async function removePodsThroughCri(clients: CriClient[]): Promise<void> {
  for (const c of clients) {
    try {
      const { items } = await c.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
      for (const p of items) {
        await c.runtimeCall("StopPodSandbox", { podSandboxId: p.id }).catch(() => {});
        await c.runtimeCall("RemovePodSandbox", { podSandboxId: p.id }).catch(() => {});
      }
    } catch {}
  }
}

export interface BenchLeftovers {
  /** CRI clients whose pods are stopped and removed first. */
  clients: CriClient[];
  /** Daemons stopped once their pods are gone. */
  daemons: Array<{ stop(): Promise<void> }>;
  containerd?: ContainerdReference;
  work: string;
  /** The cgroup below ours that the berth daemons used. */
  cgroupRoot: string;
  net: HostNetworkSnapshot;
  bridge: string;
  registry?: { stop(): Promise<void> };
}

/**
 * The end of a bench, also on error and Ctrl-C: pods through CRI, then the daemons and containerd,
 * what is still mounted or in a cgroup, the bridge and its nat rules, the registry, the directory.
 */
export async function tearDownBench(o: BenchLeftovers): Promise<void> {
  await removePodsThroughCri(o.clients);
  for (const d of o.daemons) await d.stop().catch(() => {});
  o.containerd?.stop();
  await forceClean(o.work, cgroupDirsBelowSelf(o.cgroupRoot));
  restoreHostNetwork(o.net, o.bridge);
  await o.registry?.stop().catch(() => {});
  await rm(o.work, { recursive: true, force: true });
}
