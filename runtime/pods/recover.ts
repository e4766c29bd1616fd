// After a restart (or a kill -9) the records on disk are the truth, checked against the world:
// containers that exited while the daemon was down get their exit from conmon's exit file;
// what a crash left half-made (phase "creating") is undone; pinned namespaces, rootfs mounts,
// writable layers and run-state directories that no record owns are removed.
import { existsSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { listPinnedNamespaces } from "../network/namespaces";
import { releaseRetiredContainers, removeContainerLocked } from "./container-stop";
import { type PodContext, handlerFor } from "./context";
import { recordExitIfAny } from "./exits";
import { stopStrayPidHolders } from "./pid-holder";
import { unmountRootfs } from "./rootfs-mount";
import { removeSandboxFiles } from "./sandbox-files";
import { teardownSandbox } from "./sandbox-teardown";
import { nowNanos } from "./time";

export interface RecoveryReport {
  pods: number;
  containers: number;
  exitedWhileDown: string[];
  halfMade: string[];
  orphans: string[];
  /** Containers removed before the crash whose release of resources was finished now. */
  removalsFinished: string[];
}

export async function recover(ctx: PodContext): Promise<RecoveryReport> {
  await ctx.sandboxes.load();
  await ctx.containers.load();
  const report: RecoveryReport = { pods: 0, containers: 0, exitedWhileDown: [], halfMade: [], orphans: [], removalsFinished: [] };
  // Containers RemoveContainer had taken out of the API whose resources a crash left held.
  report.removalsFinished = await releaseRetiredContainers(ctx);
  for (const pod of ctx.sandboxes.list()) ctx.names.reserve(pod.name, pod.id, "pod sandbox");
  for (const c of ctx.containers.list()) ctx.names.reserve(c.name, c.id, "container");

  for (const c of ctx.containers.list()) {
    const log = ctx.log.with({ container: c.config.metadata?.name, id: c.id.slice(0, 12) });
    try {
      if (c.phase === "creating" || !ctx.sandboxes.get(c.sandboxId)) {
        report.halfMade.push(c.id);
        await removeContainerLocked(ctx, c.id);
        continue;
      }
      report.containers++;
      if (c.phase === "exited") continue;
      const wasRunning = c.phase === "running";
      if (await recordExitIfAny(ctx, c)) {
        report.exitedWhileDown.push(c.id);
        continue;
      }
      const status = await ctx.monitor.status(c, handlerFor(ctx, c.runtimeHandler));
      if (status === "running" && !wasRunning) {
        // The daemon died between releasing the init and recording it.
        c.phase = "running";
        c.startedAt = nowNanos();
        await ctx.containers.put(c);
      } else if (status === "stopped" || status === "absent") {
        // Gone without an exit file: conmon itself was killed. Say so rather than invent a code.
        c.phase = "exited";
        c.exitCode = 255;
        c.finishedAt = nowNanos();
        c.reason = "Error";
        c.message = "the container's monitor (conmon) ended without recording an exit code";
        await ctx.containers.put(c);
        report.exitedWhileDown.push(c.id);
      }
    } catch (err) {
      log.error("cannot recover container", { error: (err as Error).message });
    }
  }

  for (const pod of ctx.sandboxes.list()) {
    try {
      if (pod.phase === "creating") {
        report.halfMade.push(pod.id);
        await teardownSandbox(ctx, pod);
        continue;
      }
      report.pods++;
    } catch (err) {
      ctx.log.error("cannot recover pod sandbox", { sandbox: pod.id.slice(0, 12), error: (err as Error).message });
    }
  }

  await removeOrphans(ctx, report);
  for (const pid of stopStrayPidHolders(join(ctx.config.state, "pods"), new Set(ctx.sandboxes.list().map((p) => p.id)))) {
    report.orphans.push(`PID namespace holder ${pid}`);
  }
  return report;
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

async function removeOrphans(ctx: PodContext, report: RecoveryReport): Promise<void> {
  const state = ctx.config.state;
  for (const id of entries(join(state, "containers"))) {
    if (ctx.containers.get(id)) continue;
    report.orphans.push(`container dir ${id}`);
    unmountRootfs(ctx.sys, join(state, "containers", id, "bundle", "rootfs"));
    await rm(join(state, "containers", id), { recursive: true, force: true });
  }
  for (const id of entries(join(state, "pods"))) {
    if (ctx.sandboxes.get(id)) continue;
    report.orphans.push(`pod dir ${id}`);
    const dir = join(state, "pods", id);
    await removeSandboxFiles(ctx.sys, { dir, resolvConf: "", hosts: "", hostname: "", shm: existsSync(join(dir, "shm")) ? join(dir, "shm") : undefined });
  }
  for (const [id, pinned] of listPinnedNamespaces(join(state, "ns"))) {
    if (ctx.sandboxes.get(id)) continue;
    report.orphans.push(`${Object.keys(pinned).join("/")} namespaces of ${id}`);
    ctx.namespaces.unpin(pinned);
  }
  for (const snap of await ctx.snapshotter.list()) {
    const m = /^container-([0-9a-f]{64})$/.exec(snap.key);
    if (!m || ctx.containers.get(m[1]!)) continue;
    report.orphans.push(`snapshot ${snap.key}`);
    await ctx.snapshotter.remove(snap.key).catch(() => {});
  }
}
