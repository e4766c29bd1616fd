// The second Node process of create and exec (the "stage"): how it is started, with which fds
// where, what it is told and how the launcher learns it is ready. Its fds: 0-2 the caller's
// stdio, 3 the sync pipe (a socket pair: the launcher sends the configuration as one JSON line,
// the stage answers {"ready":true} or {"error":"…"}), 4 the exec FIFO (create) or the container's
// mount namespace (exec), 5 the console socket, 6.. the fds passed through with --preserve-fds.
//
// The stage is spawned before the launcher has finished: its Node boot (~20 ms) is the longest
// step of create, and the launcher's remaining work (the cgroup, the seccomp filter) runs
// meanwhile, then goes to the stage on the pipe, which it waits on.
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

/** What the stage reported besides ready: things it could not do that are not fatal (a negative oom_score_adj). */
export type WarningSink = (message: string) => void;

/**
 * Spawns the stage, runs `prepare` (the launcher's work that overlaps the stage's boot; it gives
 * the stage's configuration), sends what it returns and waits for ready. A stage that fails, or
 * whose prepare fails, is killed and reaped.
 */
export async function startStage(
  cmd: StageCommand,
  fds: StageFds,
  what: string,
  prepare: (pid: number) => object | Promise<object>,
  warn: WarningSink = () => {},
  /** Run when the stage asks (its mounts made, its root not pivoted): the runtime's own hooks. */
  onHooks?: () => Promise<void>,
): Promise<ChildProcess> {
  const stdio: Array<"inherit" | "pipe" | "ignore" | number> = ["inherit", "inherit", "inherit", "pipe", fds.handle, fds.console ?? "ignore"];
  for (let i = 0; i < fds.preserve; i++) stdio[6 + i] = 3 + i;
  trace("stage:spawn");
  const child = spawn(cmd.execPath, cmd.args, { stdio, env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...traceEnv() } });
  // Listening from the start: a stage that dies while prepare runs is noticed, and an EPIPE
  // writing to it is not an unhandled error.
  const ready = waitReady(child, what, onHooks);
  ready.catch(() => {});
  try {
    if (child.pid === undefined) throw new InternalError(`${what}: ${cmd.execPath} did not start`);
    const config = await prepare(child.pid);
    trace("stage:config");
    (child.stdio[3] as NodeJS.WritableStream).write(`${JSON.stringify(config)}\n`);
    const warning = await ready;
    trace("stage:ready");
    if (warning) warn(`${what}: ${warning}`);
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

/**
 * The stage writes one JSON line on fd 3: {"ready":true[,"warning":"…"]} or {"error":"…"}; EOF
 * first means it died. Resolves with the warning, if any.
 */
function waitReady(child: ChildProcess, what: string, onHooks?: () => Promise<void>): Promise<string | undefined> {
  return new Promise((resolveReady, reject) => {
    const sync = child.stdio[3] as NodeJS.ReadableStream;
    // EPIPE when the stage is gone: its exit says more.
    sync.on("error", () => {});
    let buf = "";
    let done = false;
    const finish = (err?: Error, warning?: string) => {
      if (done) return;
      done = true;
      sync.removeAllListeners("data");
      if (err) reject(err);
      else resolveReady(warning);
    };
    sync.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0 && !done; nl = buf.indexOf("\n")) {
        let msg: { ready?: boolean; warning?: string; error?: string; hooks?: boolean };
        try {
          msg = JSON.parse(buf.slice(0, nl));
        } catch {
          return finish(new InternalError(`${what}: the stage sent an unreadable message: ${buf.slice(0, 200)}`));
        }
        buf = buf.slice(nl + 1);
        if (msg.hooks) {
          // The stage waits for one line: "resume", or why it must give up.
          const out = child.stdio[3] as NodeJS.WritableStream;
          (onHooks ?? (async () => {}))().then(
            () => out.write("resume\n"),
            (err: Error) => {
              out.write(`${err.message.replace(/\n/g, " ")}\n`);
              finish(new FailedPreconditionError(`${what}: ${err.message}`));
            },
          );
        } else if (msg.ready) finish(undefined, typeof msg.warning === "string" ? msg.warning : undefined);
        else finish(new FailedPreconditionError(`${what}: ${msg.error ?? "setup failed"}`));
      }
    });
    child.once("exit", (code, signal) => finish(new InternalError(`${what}: the stage exited (${signal ?? `code ${code}`}) before it was ready`)));
    child.once("error", (err) => finish(new InternalError(`${what}: cannot start the stage: ${err.message}`)));
  });
}
