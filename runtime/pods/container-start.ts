// StartContainer: the created container's init is released (berth's runtime: the daemon opens
// the exec FIFO in-process, no Node boot; runc: `runc start`).
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors";
import { containerEvent } from "./container-status";
import { type PodContext, handlerFor } from "./context";
import { recordExitIfAny } from "./exits";
import { nowNanos } from "./time";

export async function startContainer(ctx: PodContext, req: CriRequest<cri.StartContainerRequest>): Promise<cri.StartContainerResponse> {
  if (!req.containerId) throw new InvalidArgumentError("StartContainer: container_id is required");
  const found = ctx.containers.resolve(req.containerId);
  if (!found || found.phase === "creating") throw new NotFoundError(`StartContainer: container "${req.containerId}" not found`);
  await ctx.locks.run(found.id, async () => {
    const rec = ctx.containers.must(found.id);
    if (rec.phase !== "created") {
      throw new FailedPreconditionError(`StartContainer: container ${rec.id.slice(0, 12)} is ${rec.phase}, not created: a container starts once`);
    }
    const pod = ctx.sandboxes.get(rec.sandboxId);
    if (pod?.phase !== "ready") throw new FailedPreconditionError(`StartContainer: the pod of container ${rec.id.slice(0, 12)} is not ready (stopped)`);
    if (await recordExitIfAny(ctx, rec)) {
      throw new FailedPreconditionError(`StartContainer: container ${rec.id.slice(0, 12)} exited before it was started (exit code ${rec.exitCode})`);
    }
    await ctx.monitor.start(rec, handlerFor(ctx, rec.runtimeHandler));
    rec.phase = "running";
    rec.startedAt = nowNanos();
    await ctx.containers.put(rec);
    ctx.log.info("container started", { container: rec.config.metadata?.name, id: rec.id.slice(0, 12) });
    ctx.events.emit(containerEvent(ctx, rec, "CONTAINER_STARTED_EVENT"));
    // A process that exits at once may have done so before the record said running.
    await recordExitIfAny(ctx, rec);
  });
  return {};
}
