// Undoing a pod, step by step, each step safe to repeat: StopPodSandbox, RemovePodSandbox, a
// failed RunPodSandbox and recovery of a half-made pod after a crash all come through here.
import { rmdirSync } from "node:fs";
import { dirname } from "node:path";
import { newCgroupManager } from "../cgroups/detect";
import type { PodContext } from "./context";
import { stopPidHolder } from "./pid-holder";
import { networkRequest } from "./sandbox-run";
import { removeSandboxFiles, unmountShm } from "./sandbox-files";
import { forgetStats } from "./stats";
import type { SandboxRecord } from "./types";

/** Network down (CNI DEL with the stored result), namespaces unpinned, /dev/shm unmounted. */
export async function releaseSandboxResources(ctx: PodContext, rec: SandboxRecord): Promise<void> {
  let failure: unknown;
  if (rec.namespaces.net && !rec.networkTornDown) {
    // DEL also when ADD never finished: the plugins may have done part of it (CNI requires DEL to
    // tolerate what was never added).
    try {
      await ctx.network.tearDown(networkRequest(rec), rec.network?.result);
      rec.networkTornDown = true;
      if (ctx.sandboxes.get(rec.id)) await ctx.sandboxes.put(rec);
    } catch (err) {
      // What follows does not depend on it: a failed DEL must not leave the pins and mounts too.
      // The record keeps networkTornDown unset, so the next stop tries the DEL again.
      failure = err;
    }
  }
  ctx.namespaces.unpin(rec.namespaces);
  stopPidHolder(rec.pidHolder);
  unmountShm(ctx.sys, rec.files);
  if (failure) throw failure;
}

/** Everything of the pod itself (its containers are gone by now): resources, files, cgroup, record. */
export async function teardownSandbox(ctx: PodContext, rec: SandboxRecord): Promise<void> {
  await releaseSandboxResources(ctx, rec);
  await removeSandboxFiles(ctx.sys, rec.files);
  if (rec.ownsCgroup && rec.cgroupParent) await removePodCgroup(ctx, rec.cgroupParent);
  await ctx.sandboxes.remove(rec.id);
  ctx.names.release(rec.name, rec.id);
  forgetStats(rec.id);
}

/**
 * The pod's cgroup, then its parents up to berth's root while they are empty, so a pod leaves no
 * directory behind (kubelet's own parents, which berth did not make, are never empty while the
 * node runs pods and are simply left when not).
 */
async function removePodCgroup(ctx: PodContext, cgroupParent: string): Promise<void> {
  const cg = newCgroupManager(cgroupParent, { root: "" });
  await cg.destroy().catch((err: unknown) => ctx.log.warn("cannot remove the pod's cgroup", { cgroup: cgroupParent, error: (err as Error).message }));
  const depth = cgroupParent.split("/").filter(Boolean).length;
  for (const dir of Object.values(cg.location.dirs)) {
    let d = dirname(dir);
    for (let i = 1; i < depth; i++, d = dirname(d)) {
      try {
        rmdirSync(d);
      } catch {
        break;
      }
    }
  }
}
