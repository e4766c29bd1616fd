// The runtime side of CRI's streaming RPCs (Exec, Attach, PortForward): preconditions checked
// when the URL is handed out, sessions run when the client connects. Exec and attach go through
// the container's conmon; port forwarding dials into the pod's network namespace.
import type { Socket } from "node:net";
import type { ExecSession, StdioSession, TerminalSize } from "../api/streaming";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors";
import { dialPodPort } from "../network/dial";
import { guardUnsafe, handlerFor, type PodContext } from "./context";
import { runningContainer } from "./container-exec";
import type { SandboxRecord } from "./types";

function readyPod(ctx: PodContext, id: string): SandboxRecord {
  if (!id) throw new InvalidArgumentError("PortForward: pod_sandbox_id is required");
  const rec = ctx.sandboxes.resolve(id);
  if (!rec || rec.phase === "creating") throw new NotFoundError(`PortForward: pod sandbox "${id}" not found`);
  if (rec.phase !== "ready") throw new FailedPreconditionError(`PortForward: pod sandbox ${rec.id.slice(0, 12)} is not ready (it is ${rec.phase})`);
  return rec;
}

export async function checkExec(ctx: PodContext, containerId: string): Promise<void> {
  await runningContainer(ctx, containerId, "Exec");
}

export async function checkAttach(ctx: PodContext, containerId: string): Promise<{ tty: boolean; stdin: boolean }> {
  const rec = await runningContainer(ctx, containerId, "Attach");
  return { tty: rec.config.tty === true, stdin: rec.config.stdin === true };
}

export async function checkPod(ctx: PodContext, podSandboxId: string): Promise<void> {
  readyPod(ctx, podSandboxId);
}

export async function execStream(ctx: PodContext, containerId: string, cmd: string[], opts: { tty: boolean; stdin: boolean; size?: TerminalSize }): Promise<ExecSession> {
  if (!cmd.length) throw new InvalidArgumentError("Exec: cmd is required (the program and its arguments)");
  const rec = await runningContainer(ctx, containerId, "Exec");
  return ctx.monitor.execAttach(rec, handlerFor(ctx, rec.runtimeHandler), cmd, opts);
}

export async function attachStream(ctx: PodContext, containerId: string): Promise<StdioSession> {
  const rec = await runningContainer(ctx, containerId, "Attach");
  return ctx.monitor.attach(rec);
}

export async function dialPod(ctx: PodContext, podSandboxId: string, port: number): Promise<Socket> {
  const rec = readyPod(ctx, podSandboxId);
  return guardUnsafe(ctx, () => dialPodPort(ctx.sys, rec.namespaces.net ?? "", port));
}
