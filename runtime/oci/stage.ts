// The second Node process of create and exec (the "stage"): how it is started, with which fds
// where, and how the launcher learns it is ready. Its fds: 0-2 the caller's stdio, 3 the sync
// pipe ({"ready":true} or {"error":"…"}), 4 the exec FIFO (create) or the container's mount
// namespace (exec), 5 the console socket, 6.. the fds passed through with --preserve-fds.
import { type ChildProcess, spawn } from "node:child_process";
import { FailedPreconditionError, InternalError } from "../errors";
import { trace, traceEnv } from "./trace";

export interface StageCommand {
  execPath: string;
  args: string[];
}

export interface StageFds {
  /** fd 4 in the stage. */
  handle: number;
  console?: number;
  /** How many of the launcher's fds 3.. to pass on (runc's --preserve-fds). */
  preserve: number;
}

/** Spawns the stage on `cfgFile` and waits for ready; a stage that fails is killed and reaped. */
export async function startStage(cmd: StageCommand, cfgFile: string, fds: StageFds, what: string): Promise<ChildProcess> {
  const stdio: Array<"inherit" | "pipe" | "ignore" | number> = ["inherit", "inherit", "inherit", "pipe", fds.handle, fds.console ?? "ignore"];
  for (let i = 0; i < fds.preserve; i++) stdio[6 + i] = 3 + i;
  trace("stage:spawn");
  const child = spawn(cmd.execPath, [...cmd.args, cfgFile], { stdio, env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...traceEnv() } });
  try {
    if (child.pid === undefined) throw new InternalError(`${what}: ${cmd.execPath} did not start`);
    await waitReady(child, what);
    trace("stage:ready");
    return child;
  } catch (err) {
    await killStage(child);
    throw err;
  }
}

export async function killStage(child: ChildProcess): Promise<void> {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** The stage writes one JSON line on fd 3: {"ready":true} or {"error":"…"}; EOF first means it died. */
function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolveReady, reject) => {
    const sync = child.stdio[3] as NodeJS.ReadableStream;
    let buf = "";
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      sync.removeAllListeners("data");
      if (err) reject(err);
      else resolveReady();
    };
    sync.on("data", (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      let msg: { ready?: boolean; error?: string };
      try {
        msg = JSON.parse(buf.slice(0, nl));
      } catch {
        return finish(new InternalError(`${what}: the stage sent an unreadable message: ${buf.slice(0, 200)}`));
      }
      finish(msg.ready ? undefined : new FailedPreconditionError(`${what}: ${msg.error ?? "setup failed"}`));
    });
    child.once("exit", (code, signal) => finish(new InternalError(`${what}: the stage exited (${signal ?? `code ${code}`}) before it was ready`)));
    child.once("error", (err) => finish(new InternalError(`${what}: cannot start the stage: ${err.message}`)));
  });
}
