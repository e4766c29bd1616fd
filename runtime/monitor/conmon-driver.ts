// One conmon per container (DESIGN.md, decision 3), driven as CRI-O drives it: conmon runs the
// OCI runtime's `create` (berth's own, or runc), reports the init's PID on the sync pipe, then
// stays as the container's parent and subreaper: it holds stdio, writes the CRI log file, writes
// the exit code into the exit dir, and outlives the daemon. ExecSync is a second, short conmon in
// exec mode whose output comes back through a log file. The daemon itself starts, inspects, signals
// and deletes berth's containers in-process (no Node boot), and runs runc's commands for runc.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, existsSync, mkdirSync, readFileSync, statSync, watch } from "node:fs";
import { mkdir, open, readdir, readFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { DeadlineExceededError, FailedPreconditionError, InternalError, NotFoundError } from "../errors";
import type { Logger } from "../log";
import { openContainerCgroup } from "../oci/cgroup-of";
import { containerStatus, deleteContainer, killContainer, startContainer } from "../oci/lifecycle";
import type { Process, Spec } from "../oci/spec-types";
import { withTerminalEnv } from "../oci/spec-from-cri";
import { readRecord } from "../oci/state-dir";
import type { ExecSession, StdioSession, TerminalSize } from "../api/streaming";
import type { ContainerExit, ContainerMonitor, ExecSyncResult, RuntimeStatus } from "../pods/monitor";
import type { ContainerRecord, RuntimeHandler } from "../pods/types";
import { AttachedStdio, connectAttachSocket } from "./attach-socket";
import { streamsOf } from "./cri-log-reader";

const run = promisify(execFile);

/** CRI-O caps ExecSync output at 16 MiB; so does berth. */
const EXEC_OUTPUT_MAX = 16 * 1024 * 1024;
/** How long conmon may take to report the runtime's create. */
const CREATE_TIMEOUT_MS = 60_000;
/** The OCI runtime's --log, in the persist dir (create) or the exec's own dir. */
const RUNTIME_LOG = "runtime.log";

export interface ConmonOptions {
  conmon: string;
  /** Run state dir: exit files go to STATE/exits. */
  state: string;
  log: Logger;
}

interface SyncMessage {
  data: number;
  message?: string;
}

/** Reads conmon's sync pipe: one JSON object per line ({"data": N, "message": "…"}). */
function readSync(child: ChildProcess, count: number, timeoutMs: number, what: string): Promise<SyncMessage[]> {
  return new Promise((resolve, reject) => {
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    let buf = "";
    const msgs: SyncMessage[] = [];
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    const done = (err?: Error) => {
      clearTimeout(timer);
      pipe.removeAllListeners("data");
      pipe.removeAllListeners("end");
      if (err) reject(err);
      else resolve(msgs);
    };
    const timer = setTimeout(() => done(new DeadlineExceededError(`${what}: conmon did not report within ${timeoutMs / 1000} s`)), timeoutMs);
    pipe.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
        if (!line) continue;
        try {
          msgs.push(JSON.parse(line) as SyncMessage);
        } catch {
          return done(new InternalError(`${what}: conmon sent an unreadable message: ${line.slice(0, 200)}`));
        }
        if (msgs.length >= count || (msgs.at(-1)?.data ?? 0) < 0) return done();
      }
    });
    pipe.on("end", () => {
      if (msgs.length) return done();
      const conmonSaid = stderr
        .split("\n")
        .filter((l) => l && !l.includes("oom_score_adj"))
        .join("; ");
      done(new InternalError(`${what}: conmon ended without reporting${conmonSaid ? `: ${conmonSaid}` : ""}`));
    });
  });
}

function detach(child: ChildProcess): void {
  for (const s of child.stdio) (s as { destroy?: () => void } | null)?.destroy?.();
  child.unref();
}

/** JSON messages from one of conmon's pipes, one at a time, in order. */
class PipeMessages {
  private buf = "";
  private readonly queue: SyncMessage[] = [];
  private waiting?: { resolve(m: SyncMessage): void; reject(e: Error): void };
  private ended = false;

  constructor(pipe: NodeJS.ReadableStream) {
    pipe.on("data", (d: Buffer) => {
      this.buf += d.toString();
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        try {
          this.push(JSON.parse(line) as SyncMessage);
        } catch {
          // Not a message: ignore, as conmon's own readers do.
        }
      }
    });
    pipe.on("end", () => {
      this.ended = true;
      this.waiting?.reject(new Error("conmon closed the pipe"));
    });
    pipe.on("error", () => {});
  }

  private push(m: SyncMessage): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve(m);
    } else this.queue.push(m);
  }

  next(timeoutMs: number, what: string): Promise<SyncMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new FailedPreconditionError(`${what}: conmon closed the pipe first`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new DeadlineExceededError(`${what}: conmon did not report within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(new FailedPreconditionError(`${what}: ${e.message}`));
        },
      };
    });
  }
}

/** The exit code conmon wrote into an exit dir (a file named by the container id). */
async function exitFileIn(dir: string): Promise<number | undefined> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const n = Number.parseInt(await readFile(join(dir, name), "utf8").catch(() => ""), 10);
    if (Number.isFinite(n)) return n;
  }
  return undefined;
}

/**
 * One line to a conmon's control FIFO ("1 H W" resizes the terminal, "2 0 0" reopens the log).
 * Non-blocking: a FIFO nobody reads (its conmon gone) answers
 * ENXIO at once instead of holding one of libuv's four threads, and with them every file
 * operation of the daemon, until a reader comes.
 */
async function writeCtl(path: string, line: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENXIO") throw new FailedPreconditionError(`conmon is not reading its control FIFO ${path} (it has exited?)`);
    throw err;
  }
  try {
    await fh.write(line);
  } finally {
    await fh.close();
  }
}

/** Whether `pid` is the conmon of container `id` (a pid reused since is not). */
function isConmonOf(pid: number, id: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes("conmon") && cmdline.includes(id);
  } catch {
    return false;
  }
}

/** Whether `pid` runs and belongs to container `id` (its cgroup path names the container). */
function isProcessOfContainer(pid: number, id: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(id) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** The runtime's own words for a failure: conmon passes them on in the sync message. */
function runtimeFailure(what: string, msg: SyncMessage | undefined): Error {
  const text = (msg?.message ?? "").trim() || "no message";
  return new FailedPreconditionError(`${what}: the OCI runtime failed: ${text}`);
}

export class ConmonMonitor implements ContainerMonitor {
  readonly exitDir: string;

  constructor(private readonly opts: ConmonOptions) {
    this.exitDir = join(opts.state, "exits");
    mkdirSync(this.exitDir, { recursive: true, mode: 0o700 });
  }

  private containerDir(rec: ContainerRecord): string {
    return join(rec.bundle, "..");
  }

  private persistDir(rec: ContainerRecord): string {
    return join(this.containerDir(rec), "conmon");
  }

  private env(): NodeJS.ProcessEnv {
    // Nothing of the daemon's Node environment (NODE_OPTIONS, NODE_EXTRA_CA_CERTS: ~35 ms per
    // runtime boot) reaches the runtime conmon starts.
    return { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", _OCI_SYNCPIPE: "3" };
  }

  /**
   * `runtimeLog`: the runtime's --log (JSON) for this operation. Given one, runc and berth write
   * their warnings there and not on stderr, which conmon makes the container's (or the exec's).
   * `bundle`: where conmon makes its control FIFOs and attach socket; an exec gets its own
   * directory, since in the container's bundle its FIFOs would replace the container conmon's
   * (which goes on reading the unlinked ones: ReopenContainerLog and resizes would write to a
   * FIFO nobody reads).
   */
  private baseArgs(rec: ContainerRecord, handler: RuntimeHandler, uuid: string, runtimeLog: string, bundle = rec.bundle): string[] {
    const args = ["--api-version", "1", "-c", rec.id, "-u", uuid, "-n", rec.name, "-r", handler.path];
    for (const a of [...handler.args, `--log=${runtimeLog}`, "--log-format=json"]) args.push("--runtime-arg", a);
    args.push("-b", bundle, "--socket-dir-path", join(this.opts.state, "attach"), "--full-attach", "--log-level", "info", "--syslog");
    return args;
  }

  async create(rec: ContainerRecord, handler: RuntimeHandler): Promise<{ pid: number; conmonPid: number }> {
    const persist = this.persistDir(rec);
    await mkdir(persist, { recursive: true, mode: 0o700 });
    await mkdir(join(this.opts.state, "attach"), { recursive: true, mode: 0o700 });
    const pidFile = join(persist, "pid");
    const conmonPidFile = join(persist, "conmon.pid");
    const args = [
      ...this.baseArgs(rec, handler, rec.id, join(persist, RUNTIME_LOG)),
      "-p",
      pidFile,
      "-P",
      conmonPidFile,
      "--exit-dir",
      this.exitDir,
      "--persist-dir",
      persist,
      "-l",
      `k8s-file:${rec.logPath}`,
    ];
    if (rec.config.tty) args.push("-t");
    if (rec.config.stdin) args.push("-i");
    if (rec.config.stdin && !rec.config.stdinOnce) args.push("--leave-stdin-open");
    const what = `container ${rec.id.slice(0, 12)}`;
    // Its own session: a signal to the daemon's process group never reaches conmon.
    // conmon writes its `oom` marker into its working directory: the persist dir, where exitOf looks.
    const child = spawn(this.opts.conmon, args, { cwd: persist, detached: true, env: this.env(), stdio: ["ignore", "ignore", "pipe", "pipe"] });
    try {
      const [msg] = await readSync(child, 1, CREATE_TIMEOUT_MS, `create ${what}`);
      if (!msg || msg.data < 0) throw runtimeFailure(`create ${what}`, msg);
      await this.forwardWarnings(join(persist, RUNTIME_LOG), rec);
      const conmonPid = Number(await readFile(conmonPidFile, "utf8").catch(() => "0"));
      return { pid: msg.data, conmonPid };
    } finally {
      detach(child);
    }
  }

  /**
   * The runtime's warnings (a score or limit it could not apply) into the daemon's log, once: the
   * file is emptied. Its errors need no copy: they are on stderr too, which conmon reports.
   */
  private async forwardWarnings(file: string, rec: ContainerRecord): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
      await truncate(file, 0);
    } catch {
      return;
    }
    for (const line of text.split("\n")) {
      let entry: { level?: unknown; msg?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if ((entry.level === "warning" || entry.level === "warn") && typeof entry.msg === "string") {
        this.opts.log.warn(`OCI runtime: ${entry.msg}`, { container: rec.id.slice(0, 12) });
      }
    }
  }

  async start(rec: ContainerRecord, handler: RuntimeHandler): Promise<void> {
    if (handler.inProcess) return startContainer({ root: handler.root, warn: (m) => this.opts.log.warn(m, { container: rec.id.slice(0, 12) }) }, rec.id);
    await this.runtime(handler, ["start", rec.id], `start container ${rec.id.slice(0, 12)}`);
  }

  async status(rec: ContainerRecord, handler: RuntimeHandler): Promise<RuntimeStatus> {
    if (handler.inProcess) {
      try {
        const st = await containerStatus({ root: handler.root, cgroupFor: openContainerCgroup }, readRecord(handler.root, rec.id));
        return st === "creating" ? "created" : st;
      } catch (err) {
        if (err instanceof NotFoundError) return "absent";
        throw err;
      }
    }
    try {
      const { stdout } = await run(handler.path, [...handler.args, "state", rec.id], { env: this.env() });
      return (JSON.parse(stdout) as { status: RuntimeStatus }).status;
    } catch {
      return "absent";
    }
  }

  async kill(rec: ContainerRecord, handler: RuntimeHandler, signal: number, all: boolean): Promise<void> {
    if (handler.inProcess) {
      await killContainer({ root: handler.root, cgroupFor: openContainerCgroup }, rec.id, signal, all);
      return;
    }
    await this.runtime(handler, ["kill", ...(all ? ["--all"] : []), rec.id, String(signal)], `kill container ${rec.id.slice(0, 12)}`);
  }

  async delete(rec: ContainerRecord, handler: RuntimeHandler): Promise<void> {
    if (handler.inProcess) {
      try {
        await deleteContainer({ root: handler.root, cgroupFor: openContainerCgroup, warn: (m) => this.opts.log.warn(m, { container: rec.id.slice(0, 12) }) }, rec.id, true);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      return;
    }
    await this.runtime(handler, ["delete", "--force", rec.id], `delete container ${rec.id.slice(0, 12)}`).catch((err: Error) => {
      if (!/does not exist|not found/i.test(err.message)) throw err;
    });
  }

  /**
   * The exit conmon recorded. When conmon itself is gone (killed, OOM-killed) no exit file will
   * come: once the container's process is gone too, the exit is reported as lost (255) rather
   * than the container staying "running" for ever, as CRI-O reports a conmon that died.
   */
  async exitOf(rec: ContainerRecord): Promise<ContainerExit | undefined> {
    const recorded = await this.exitFile(rec);
    if (recorded || !rec.conmonPid || isConmonOf(rec.conmonPid, rec.id)) return recorded;
    // It writes the file before it exits: one written just before it went is read now.
    const late = await this.exitFile(rec);
    if (late) return late;
    if (rec.pid && isProcessOfContainer(rec.pid, rec.id)) return undefined;
    return {
      exitCode: 255,
      finishedAt: Date.now(),
      oomKilled: this.oomKilled(rec),
      lost: `its monitor (conmon, pid ${rec.conmonPid}) died before the container exited: the exit status is unknown`,
    };
  }

  private async exitFile(rec: ContainerRecord): Promise<ContainerExit | undefined> {
    const file = join(this.exitDir, rec.id);
    let text: string;
    let mtimeMs: number;
    try {
      text = await readFile(file, "utf8");
      mtimeMs = (await stat(file)).mtimeMs;
    } catch {
      return undefined;
    }
    const exitCode = Number.parseInt(text.trim(), 10);
    if (!Number.isFinite(exitCode)) return undefined;
    return { exitCode, finishedAt: mtimeMs, oomKilled: this.oomKilled(rec) };
  }

  /** conmon leaves an `oom` file in its persist dir when it saw the kernel OOM-kill the container. */
  private oomKilled(rec: ContainerRecord): boolean {
    return existsSync(join(this.persistDir(rec), "oom"));
  }

  watchExits(onExit: (id: string) => void): () => void {
    const w = watch(this.exitDir, (_event, name) => {
      if (name && !name.startsWith(".")) onExit(name.toString());
    });
    w.on("error", (err) => this.opts.log.error("exit-dir watch failed; exits are still found by polling", { dir: this.exitDir, error: err.message }));
    return () => w.close();
  }

  async execSync(rec: ContainerRecord, handler: RuntimeHandler, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResult> {
    const spec = JSON.parse(readFileSync(join(rec.bundle, "config.json"), "utf8")) as Spec;
    const uuid = randomBytes(8).toString("hex");
    const dir = join(this.containerDir(rec), `exec-${uuid}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      // The container's own process settings (user, env, cwd, capabilities, rlimits) with the
      // command in place of its args, as runc exec --process expects.
      const proc: Process = { ...spec.process!, args: cmd, terminal: false };
      await writeFile(join(dir, "process.json"), JSON.stringify(proc));
      const logPath = join(dir, "output.log");
      const args = [...this.baseArgs(rec, handler, uuid, join(dir, RUNTIME_LOG), dir), "-p", join(dir, "pid"), "-e", "--exec-process-spec", join(dir, "process.json"), "--exit-dir", dir, "-l", `k8s-file:${logPath}`];
      if (timeoutSeconds > 0) args.push("-T", String(timeoutSeconds));
      const child = spawn(this.opts.conmon, args, { cwd: dir, env: this.env(), stdio: ["ignore", "ignore", "pipe", "pipe"] });
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      const what = `exec in container ${rec.id.slice(0, 12)}`;
      let msgs: SyncMessage[];
      try {
        // The exec'd pid, then its exit code. Without a timeout of its own the exec may run as
        // long as it likes (CRI: timeout 0 means none); conmon enforces -T.
        msgs = await readSync(child, 2, timeoutSeconds > 0 ? (timeoutSeconds + 10) * 1000 : 2 ** 31 - 1, what);
      } finally {
        detach(child);
      }
      await exited;
      await this.forwardWarnings(join(dir, RUNTIME_LOG), rec);
      const [first, second] = msgs;
      if (!first || first.data < 0) throw runtimeFailure(what, first);
      // conmon -T kills the command when its time is up and reports no exit code.
      if (!second && timeoutSeconds > 0) {
        throw new DeadlineExceededError(`${what}: ${JSON.stringify(cmd)} did not finish within its ${timeoutSeconds} s timeout and was killed`);
      }
      if (!second) throw new InternalError(`${what}: conmon reported no exit code`);
      if (second.data < 0 || /timed out/i.test(second.message ?? "")) {
        throw new DeadlineExceededError(`${what}: ${JSON.stringify(cmd)} did not finish within its ${timeoutSeconds} s timeout and was killed`);
      }
      let text = "";
      try {
        const size = statSync(logPath).size;
        text = size > EXEC_OUTPUT_MAX * 2 ? "" : await readFile(logPath, "utf8");
      } catch {}
      const { stdout, stderr } = streamsOf(text);
      return { stdout: Buffer.from(stdout).subarray(0, EXEC_OUTPUT_MAX), stderr: Buffer.from(stderr).subarray(0, EXEC_OUTPUT_MAX), exitCode: second.data };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async execAttach(rec: ContainerRecord, handler: RuntimeHandler, cmd: string[], opts: { tty: boolean; stdin: boolean; size?: TerminalSize }): Promise<ExecSession> {
    const spec = JSON.parse(readFileSync(join(rec.bundle, "config.json"), "utf8")) as Spec;
    const uuid = randomBytes(8).toString("hex");
    // The exec's own directory is conmon's bundle for it: its attach socket and ctl FIFO live
    // there, apart from the container's.
    const dir = join(this.containerDir(rec), `exec-${uuid}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const what = `exec in container ${rec.id.slice(0, 12)}`;
    const proc: Process = { ...spec.process!, args: cmd, terminal: opts.tty, env: withTerminalEnv(spec.process!.env ?? [], opts.tty, true) };
    if (opts.tty && opts.size) proc.consoleSize = { width: opts.size.width, height: opts.size.height };
    await writeFile(join(dir, "process.json"), JSON.stringify(proc));
    const args = [...this.baseArgs(rec, handler, uuid, join(dir, RUNTIME_LOG), dir), "-p", join(dir, "pid"), "-e", "--exec-attach", "--exec-process-spec", join(dir, "process.json"), "--exit-dir", dir, "-l", `k8s-file:${join(dir, "output.log")}`];
    if (opts.tty) args.push("-t");
    if (opts.stdin) args.push("-i");
    // podman's protocol: fd 3 sync (pid, then exit code), fd 4 start (one write to let conmon
    // go on, one once attached), fd 5 attach (conmon says its socket is ready, later the exit).
    const child = spawn(this.opts.conmon, args, {
      cwd: dir,
      env: { ...this.env(), _OCI_STARTPIPE: "4", _OCI_ATTACHPIPE: "5" },
      stdio: ["ignore", "ignore", "pipe", "pipe", "pipe", "pipe"],
    });
    const fds = child.stdio as unknown as Array<NodeJS.ReadableStream & NodeJS.WritableStream>;
    const sync = new PipeMessages(fds[3]!);
    const attachPipe = new PipeMessages(fds[5]!);
    const start = fds[4]!;
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    const fail = async (err: Error): Promise<never> => {
      detach(child);
      await rm(dir, { recursive: true, force: true });
      throw err;
    };
    let stdio: AttachedStdio;
    try {
      start.write("0");
      const ready = await attachPipe.next(10_000, `${what}: conmon's attach socket`);
      if (ready.data < 0) throw runtimeFailure(what, ready);
      if (opts.tty && opts.size) await writeCtl(join(dir, "ctl"), `1 ${opts.size.height} ${opts.size.width}\n`).catch(() => {});
      stdio = new AttachedStdio(connectAttachSocket(join(dir, "attach")));
      start.write("0");
    } catch (err) {
      return fail(err instanceof Error ? new FailedPreconditionError(`${err.message}${stderr ? ` (conmon: ${stderr.trim()})` : ""}`) : new Error(String(err)));
    }
    const exitCode = (async () => {
      try {
        const pid = await sync.next(30_000, `${what}: the exec'd pid`);
        if (pid.data < 0) throw runtimeFailure(what, pid);
        // conmon reports the exit on one of its pipes; the exit file in the exit dir is the record.
        const exit = await Promise.any([attachPipe.next(2 ** 31 - 1, `${what}: exit`), sync.next(2 ** 31 - 1, `${what}: exit`)]).catch(() => undefined);
        if (exit && exit.data >= 0) return exit.data;
        const recorded = await exitFileIn(dir);
        if (recorded !== undefined) return recorded;
        throw new FailedPreconditionError(`${what}: conmon reported no exit code${exit?.message ? ` (${exit.message})` : ""}`);
      } finally {
        detach(child);
        await stdio.closed;
        await this.forwardWarnings(join(dir, RUNTIME_LOG), rec);
        await rm(dir, { recursive: true, force: true });
      }
    })();
    exitCode.catch(() => {});
    return {
      stdout: stdio.stdout,
      stderr: stdio.stderr,
      writeStdin: (d) => stdio.writeStdin(d),
      closeStdin: () => stdio.closeStdin(),
      resize: (size) => writeCtl(join(dir, "ctl"), `1 ${size.height} ${size.width}\n`),
      detach: () => stdio.detach(),
      closed: stdio.closed,
      exitCode,
    };
  }

  async attach(rec: ContainerRecord): Promise<StdioSession> {
    // --full-attach: the socket is in the bundle, next to the ctl FIFO.
    const stdio = new AttachedStdio(connectAttachSocket(join(rec.bundle, "attach")));
    return {
      stdout: stdio.stdout,
      stderr: stdio.stderr,
      writeStdin: (d) => stdio.writeStdin(d),
      closeStdin: () => stdio.closeStdin(),
      resize: (size) => writeCtl(join(rec.bundle, "ctl"), `1 ${size.height} ${size.width}\n`),
      detach: () => stdio.detach(),
      closed: stdio.closed,
    };
  }

  async reopenLog(rec: ContainerRecord): Promise<void> {
    // conmon's control FIFO: "2 0 0" asks it to reopen the log file (kubelet rotated it).
    await writeCtl(join(rec.bundle, "ctl"), "2 0 0\n");
  }

  async cleanup(rec: ContainerRecord): Promise<void> {
    await unlink(join(this.exitDir, rec.id)).catch(() => {});
    const pid = rec.conmonPid;
    if (pid && isConmonOf(pid, rec.id)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await rm(this.persistDir(rec), { recursive: true, force: true });
  }

  private async runtime(handler: RuntimeHandler, args: string[], what: string): Promise<string> {
    try {
      const { stdout } = await run(handler.path, [...handler.args, ...args], { env: this.env(), timeout: 30_000 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new FailedPreconditionError(`${what}: ${handler.name} failed: ${(e.stderr || e.message).trim()}`);
    }
  }
}

