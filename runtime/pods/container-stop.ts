// StopContainer and RemoveContainer. Stop sends the stop signal (the image's STOPSIGNAL, the CRI
// stop_signal, else SIGTERM), waits up to the timeout, then SIGKILLs every process of the
// container. Remove stops first (CRI: a running container is removed forcibly), then takes the
// runtime's container, conmon's files, the rootfs mount, the writable layer and the record away.
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { Code, DeadlineExceededError, InvalidArgumentError, NotFoundError } from "../errors";
import { containerEvent } from "./container-status";
import { type PodContext, handlerFor } from "./context";
import { recordExitIfAny, waitForExit } from "./exits";
import { unmountRootfs } from "./rootfs-mount";
import { forgetStats } from "./stats";
import { stepTimes } from "./step-times";
import type { ContainerRecord } from "./types";

const SIGKILL = 9;
/** How long a SIGKILLed container may take to be reported gone before stop gives up. */
const KILL_WAIT_MS = 10_000;

export async function stopContainerLocked(ctx: PodContext, id: string, timeoutSeconds: number): Promise<void> {
  const rec = ctx.containers.get(id);
  if (!rec || rec.phase === "creating" || rec.phase === "exited") return;
  if (await recordExitIfAny(ctx, rec)) return;
  const handler = handlerFor(ctx, rec.runtimeHandler);
  const log = ctx.log.with({ container: rec.config.metadata?.name, id: id.slice(0, 12) });
  if (rec.phase === "running" && timeoutSeconds > 0 && rec.stopSignal !== SIGKILL) {
    await ctx.monitor.kill(rec, handler, rec.stopSignal, false).catch((err: unknown) => log.debug("stop signal not delivered", { error: (err as Error).message }));
    if (await waitForExit(ctx, rec, timeoutSeconds * 1000)) return;
    log.info("container did not stop within its timeout; killing it", { timeoutSeconds });
  }
  await ctx.monitor.kill(rec, handler, SIGKILL, true).catch((err: unknown) => log.debug("SIGKILL not delivered", { error: (err as Error).message }));
  if (!(await waitForExit(ctx, rec, KILL_WAIT_MS))) {
    throw new DeadlineExceededError(`StopContainer: container ${id.slice(0, 12)} did not exit within ${KILL_WAIT_MS / 1000} s of SIGKILL (is its process in uninterruptible sleep?)`);
  }
}

/** What a container holds, released: the runtime's state, conmon's files, the rootfs mount, the writable layer, its directory. */
async function releaseContainer(ctx: PodContext, rec: ContainerRecord): Promise<Record<string, number>> {
  const { step, steps } = stepTimes();
  const handler = handlerFor(ctx, rec.runtimeHandler);
  await ctx.monitor.delete(rec, handler);
  step("runtimeDeleteMs");
  await ctx.monitor.cleanup(rec);
  step("monitorFilesMs");
  unmountRootfs(ctx.sys, rec.rootfs);
  await ctx.snapshotter.remove(rec.snapshotKey).catch((err: { code?: number }) => {
    if (err.code !== Code.NOT_FOUND) throw err;
  });
  step("rootfsMs");
  await rm(dirname(rec.bundle), { recursive: true, force: true });
  step("filesMs");
  return steps;
}

function forgetContainer(ctx: PodContext, rec: ContainerRecord): void {
  ctx.names.release(rec.name, rec.id);
  forgetStats(rec.id);
  if (rec.phase !== "creating") ctx.events.emit(containerEvent(ctx, rec, "CONTAINER_DELETED_EVENT"));
}

/** Stops the container if it runs and removes it with everything it holds, before returning. */
export async function removeContainerLocked(ctx: PodContext, id: string): Promise<void> {
  const rec = ctx.containers.get(id);
  if (!rec) return;
  if (rec.phase === "created" || rec.phase === "running") await stopContainerLocked(ctx, id, 0);
  await releaseContainer(ctx, rec);
  await ctx.containers.remove(id);
  forgetContainer(ctx, rec);
}

/**
 * RemoveContainer's way: the container is stopped if it runs, then leaves the API at once — its
 * record becomes a tombstone — and what it holds is released in the background (background.ts),
 * as containerd leaves a removed container's snapshot to its garbage collector. Removing its pod
 * waits for that; a restart finishes it from the tombstone.
 */
async function retireContainerLocked(ctx: PodContext, id: string): Promise<void> {
  const rec = ctx.containers.get(id);
  if (!rec) return;
  const { step, steps } = stepTimes();
  if (rec.phase === "created" || rec.phase === "running") await stopContainerLocked(ctx, id, 0);
  step("stopMs");
  await ctx.containers.retire(id);
  step("recordMs");
  forgetContainer(ctx, rec);
  ctx.background.start(rec.sandboxId, `removing container ${id.slice(0, 12)}`, async () => {
    const released = await releaseContainer(ctx, rec);
    await ctx.containers.forgetRetired(id);
    ctx.log.debug("container removed", { id: id.slice(0, 12), ...steps, ...released });
  });
}

/** Releases what the containers removed before a crash still held (their tombstones, retireContainerLocked). */
export async function releaseRetiredContainers(ctx: PodContext): Promise<string[]> {
  const done: string[] = [];
  for (const rec of await ctx.containers.retired()) {
    try {
      await releaseContainer(ctx, rec);
      await ctx.containers.forgetRetired(rec.id);
      done.push(rec.id);
    } catch (err) {
      ctx.log.warn("cannot finish removing a container removed before the restart; the next start tries again", { id: rec.id.slice(0, 12), error: (err as Error).message });
    }
  }
  return done;
}

export async function stopContainer(ctx: PodContext, req: CriRequest<cri.StopContainerRequest>): Promise<cri.StopContainerResponse> {
  if (!req.containerId) throw new InvalidArgumentError("StopContainer: container_id is required");
  const rec = ctx.containers.resolve(req.containerId);
  if (!rec) throw new NotFoundError(`StopContainer: container "${req.containerId}" not found`);
  const timeout = Number(req.timeout ?? 0);
  await ctx.locks.run(rec.id, () => stopContainerLocked(ctx, rec.id, timeout));
  return {};
}

export async function removeContainer(ctx: PodContext, req: CriRequest<cri.RemoveContainerRequest>): Promise<cri.RemoveContainerResponse> {
  if (!req.containerId) throw new InvalidArgumentError("RemoveContainer: container_id is required");
  const rec = ctx.containers.resolve(req.containerId);
  // CRI: removing a container that is gone succeeds.
  if (!rec) return {};
  await ctx.locks.run(rec.id, () => retireContainerLocked(ctx, rec.id));
  return {};
}
