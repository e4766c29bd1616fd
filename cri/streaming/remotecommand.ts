// Exec and attach sessions, whatever carries them (SPDY streams or WebSocket channels): the
// client's stdin goes to the process, its output to the client's stdout/stderr, resize events to
// the terminal, and the end is one status on the error stream, as kubelet's remotecommand server
// writes it (protocol v4 and later: a JSON Status; earlier: a plain message on failure only).
import type { Readable, Writable } from "node:stream";
import type * as cri from "../../runtime/api/cri-v1";
import type { StdioSession, StreamingRuntime, TerminalSize } from "../../runtime/api/streaming";
import type { Logger } from "../../runtime/log";

/** The streams a client opened, already matched to the cached request. */
export interface SessionChannels {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** Terminal sizes as the client sends them; one sent before this call is given at once. */
  onResize(fn: (size: TerminalSize) => void): void;
  /** The client's first terminal size, once it has sent one, or undefined after `ms`. */
  firstSize(ms: number): Promise<TerminalSize | undefined>;
  /** Called once with the outcome; the transport writes it and closes. */
  finish(outcome: Outcome): void;
  /** Resolves when the client went away (connection closed), so the session can let go. */
  gone: Promise<void>;
}

export type Outcome = { ok: true } | { ok: false; exitCode?: number; message: string };

/** The Status object remotecommand v4+ clients (kubectl, crictl) decode from the error stream. */
export function statusJson(o: Outcome): string {
  if (o.ok) return JSON.stringify({ metadata: {}, status: "Success" });
  if (o.exitCode !== undefined) {
    return JSON.stringify({
      metadata: {},
      status: "Failure",
      message: o.message,
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: String(o.exitCode) }] },
    });
  }
  return JSON.stringify({ metadata: {}, status: "Failure", message: o.message, reason: "InternalError" });
}

/**
 * One session's resize events. kubectl sends its terminal's size as soon as the streams are open,
 * before the process exists: the last size is kept for a listener that comes later, and exec
 * waits a moment for the first one so the command starts with it (`stty size` as its first act).
 */
export class TerminalSizes {
  private last?: TerminalSize;
  private readonly handlers: Array<(s: TerminalSize) => void> = [];
  private readonly waiting: Array<(s: TerminalSize) => void> = [];

  emit(size: TerminalSize): void {
    if (!(size.width > 0 && size.height > 0)) return;
    this.last = size;
    for (const h of this.handlers) h(size);
    for (const w of this.waiting.splice(0)) w(size);
  }

  onResize(fn: (size: TerminalSize) => void): void {
    this.handlers.push(fn);
    if (this.last) fn(this.last);
  }

  firstSize(ms: number): Promise<TerminalSize | undefined> {
    if (this.last) return Promise.resolve(this.last);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ms);
      this.waiting.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }
}

/** How long exec with a terminal waits for the client's size before it starts the command without one. */
const FIRST_SIZE_WAIT_MS = 250;

function wire(session: StdioSession, ch: SessionChannels, tty: boolean): void {
  const pipeOut = (from: NodeJS.ReadableStream, to: Writable | undefined) => {
    from.on("data", (d: Buffer) => {
      if (to && !to.destroyed && !to.writableEnded) to.write(d);
    });
  };
  pipeOut(session.stdout, ch.stdout);
  // With a terminal everything comes through stdout; kubelet refuses tty together with stderr.
  if (!tty) pipeOut(session.stderr, ch.stderr);
  if (ch.stdin) {
    ch.stdin.on("data", (d: Buffer) => session.writeStdin(d));
    ch.stdin.once("end", () => session.closeStdin());
    ch.stdin.on("error", () => session.closeStdin());
  }
  ch.onResize((size) => session.resize(size).catch(() => {}));
}

export async function runExec(rt: StreamingRuntime, req: cri.CriRequest<cri.ExecRequest>, ch: SessionChannels, log: Logger, size?: TerminalSize): Promise<void> {
  const cmd = (req.cmd ?? []) as string[];
  let session: Awaited<ReturnType<StreamingRuntime["exec"]>>;
  try {
    const initial = size ?? (req.tty ? await ch.firstSize(FIRST_SIZE_WAIT_MS) : undefined);
    session = await rt.exec(req.containerId ?? "", cmd, { tty: req.tty === true, stdin: req.stdin === true, size: initial });
  } catch (err) {
    ch.finish({ ok: false, message: (err as Error).message });
    return;
  }
  wire(session, ch, req.tty === true);
  // A client that disappears drops the streams; the command runs on, as kubelet leaves it.
  void ch.gone.then(() => session.detach());
  try {
    const code = await session.exitCode;
    await session.closed;
    ch.finish(code === 0 ? { ok: true } : { ok: false, exitCode: code, message: `command terminated with non-zero exit code: error executing command ${JSON.stringify(cmd)}, exit code ${code}` });
  } catch (err) {
    log.warn("exec session failed", { container: req.containerId?.slice(0, 12), error: (err as Error).message });
    ch.finish({ ok: false, message: (err as Error).message });
  }
}

export async function runAttach(rt: StreamingRuntime, req: cri.CriRequest<cri.AttachRequest>, ch: SessionChannels): Promise<void> {
  let session: StdioSession;
  try {
    session = await rt.attach(req.containerId ?? "");
  } catch (err) {
    ch.finish({ ok: false, message: (err as Error).message });
    return;
  }
  wire(session, ch, req.tty === true);
  // Detaching (the client going away) leaves the container running.
  void ch.gone.then(() => session.detach());
  await session.closed;
  ch.finish({ ok: true });
}
