// StopPodSandbox and RemovePodSandbox. Stop ends every container of the pod (SIGKILL: kubelet
// has already stopped them gracefully when it cares) and releases the network; it is idempotent,
// also after a daemon restart. Remove refuses nothing: it stops what still runs first.
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { InvalidArgumentError } from "../errors";
import { removeContainerLocked, stopContainerLocked } from "./container-stop";
import type { PodContext } from "./context";
import { releaseSandboxResources, teardownSandbox } from "./sandbox-teardown";
import type { SandboxRecord } from "./types";

/** The pod a Stop/Remove names, or undefined when it is already gone (CRI: not an error; kubelet retries). */
function podToEnd(ctx: PodContext, id: string | null | undefined, rpc: string): SandboxRecord | undefined {
  if (!id) throw new InvalidArgumentError(`${rpc}: pod_sandbox_id is required`);
  return ctx.sandboxes.resolve(id);
}

export async function stopPodSandbox(ctx: PodContext, req: CriRequest<cri.StopPodSandboxRequest>): Promise<cri.StopPodSandboxResponse> {
  const found = podToEnd(ctx, req.podSandboxId, "StopPodSandbox");
  if (!found) return {};
  await ctx.locks.run(found.id, async () => {
    const rec = ctx.sandboxes.get(found.id);
    if (!rec) return;
    for (const c of ctx.containers.list().filter((c) => c.sandboxId === rec.id)) {
      await ctx.locks.run(c.id, () => stopContainerLocked(ctx, c.id, 0));
    }
    await releaseSandboxResources(ctx, rec);
    if (rec.phase !== "notready") {
      rec.phase = "notready";
      await ctx.sandboxes.put(rec);
      ctx.log.info("pod sandbox stopped", { sandbox: rec.id.slice(0, 12), pod: `${rec.config.metadata?.namespace}/${rec.config.metadata?.name}` });
    }
  });
  return {};
}

export async function removePodSandbox(ctx: PodContext, req: CriRequest<cri.RemovePodSandboxRequest>): Promise<cri.RemovePodSandboxResponse> {
  const found = podToEnd(ctx, req.podSandboxId, "RemovePodSandbox");
  if (!found) return {};
  await ctx.locks.run(found.id, async () => {
    const rec = ctx.sandboxes.get(found.id);
    if (!rec) return;
    for (const c of ctx.containers.list().filter((c) => c.sandboxId === rec.id)) {
      await ctx.locks.run(c.id, async () => {
        await stopContainerLocked(ctx, c.id, 0);
        await removeContainerLocked(ctx, c.id);
      });
    }
    // Containers removed earlier still releasing in the background (a pod cgroup cannot go before theirs).
    await ctx.background.drain(rec.id);
    await teardownSandbox(ctx, rec);
    ctx.log.info("pod sandbox removed", { sandbox: rec.id.slice(0, 12), pod: `${rec.config.metadata?.namespace}/${rec.config.metadata?.name}` });
  });
  return {};
}
