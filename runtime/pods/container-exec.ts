// ExecSync, ReopenContainerLog and UpdateContainerResources: operations on a running container.
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors";
import { resourcesFromCri } from "../oci/spec-from-cri";
import { openCgroupOf } from "./container-cgroup";
import { type PodContext, handlerFor } from "./context";
import { recordExitIfAny } from "./exits";
import type { ContainerRecord } from "./types";

/** The container `id` names, which must be running: NOT_FOUND or FAILED_PRECONDITION naming `rpc` otherwise. */
export async function runningContainer(ctx: PodContext, id: string | null | undefined, rpc: string): Promise<ContainerRecord> {
  if (!id) throw new InvalidArgumentError(`${rpc}: container_id is required`);
  const rec = ctx.containers.resolve(id);
  if (!rec || rec.phase === "creating") throw new NotFoundError(`${rpc}: container "${id}" not found`);
  await recordExitIfAny(ctx, rec);
  if (rec.phase !== "running") throw new FailedPreconditionError(`${rpc}: container ${rec.id.slice(0, 12)} is not running (it is ${rec.phase})`);
  return rec;
}

export async function execSync(ctx: PodContext, req: CriRequest<cri.ExecSyncRequest>): Promise<cri.ExecSyncResponse> {
  const cmd = (req.cmd ?? []).filter((a): a is string => typeof a === "string");
  if (!cmd.length) throw new InvalidArgumentError("ExecSync: cmd is required (the program and its arguments)");
  const rec = await runningContainer(ctx, req.containerId, "ExecSync");
  const r = await ctx.monitor.execSync(rec, handlerFor(ctx, rec.runtimeHandler), cmd, Number(req.timeout ?? 0));
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
}

export async function reopenContainerLog(ctx: PodContext, req: CriRequest<cri.ReopenContainerLogRequest>): Promise<cri.ReopenContainerLogResponse> {
  const rec = await runningContainer(ctx, req.containerId, "ReopenContainerLog");
  if (!rec.logPath) throw new FailedPreconditionError(`ReopenContainerLog: container ${rec.id.slice(0, 12)} has no log path`);
  await ctx.monitor.reopenLog(rec);
  return {};
}

export async function updateContainerResources(ctx: PodContext, req: CriRequest<cri.UpdateContainerResourcesRequest>): Promise<cri.UpdateContainerResourcesResponse> {
  if (!req.linux) throw new InvalidArgumentError("UpdateContainerResources: linux resources are required");
  const rec = await runningContainer(ctx, req.containerId, "UpdateContainerResources");
  await ctx.locks.run(rec.id, async () => {
    const cg = openCgroupOf(handlerFor(ctx, rec.runtimeHandler), rec.id, rec.cgroupsPath);
    await cg.apply(resourcesFromCri(req.linux!));
    rec.resources = req.linux as cri.LinuxContainerResources;
    await ctx.containers.put(rec);
  });
  return {};
}
