// Container log rotation, kubelet's ContainerLogManager for the pods the reconciler runs: on a
// node run by kubelet, kubelet rotates (it renames the file and asks the runtime to reopen it);
// a node run by berth's reconciler has no kubelet, and a chatty container would fill the disk.
// Every `intervalMs`, each running managed container whose log is over `maxBytes` has it renamed
// to LOG.YYYYMMDD-hhmmss and reopened (CRI ReopenContainerLog); at most `maxFiles` files are kept
// for a container, the current one included. Rotated files are not compressed (kubelet gzips
// all but the newest).
import { readdir, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { RuntimeService } from "../runtime/api/runtime";
import type { Logger } from "../runtime/log";
import { LABEL_MANAGED } from "./types";

export interface LogRotationOptions {
  runtime: RuntimeService;
  log: Logger;
  /** kubelet's containerLogMaxSize (default 10 MiB). */
  maxBytes: number;
  /** kubelet's containerLogMaxFiles, the current file included (default 5, at least 2). */
  maxFiles: number;
  /** kubelet's containerLogMonitorInterval (default 10 s). */
  intervalMs: number;
}

/** The rotated copies of `logPath` (LOG.<stamp>), oldest first. */
export async function rotatedCopies(logPath: string): Promise<string[]> {
  const prefix = `${basename(logPath)}.`;
  const names = await readdir(dirname(logPath)).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(prefix) && /^\d{8}-\d{6}(-\d+)?$/.test(n.slice(prefix.length)))
    .sort()
    .map((n) => join(dirname(logPath), n));
}

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

export class LogRotation {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly opts: LogRotationOptions) {}

  start(): void {
    const tick = () => {
      this.timer = setTimeout(() => {
        this.running = this.once()
          .catch((err: unknown) => this.opts.log.warn("container log rotation failed", { error: (err as Error).message }))
          .finally(() => {
            this.running = undefined;
            if (this.timer) tick();
          });
      }, this.opts.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One round over the running managed containers. */
  async once(): Promise<void> {
    const { containers } = await this.opts.runtime.listContainers({ filter: { state: { state: "CONTAINER_RUNNING" }, labelSelector: { [LABEL_MANAGED]: "berth" } } });
    for (const c of containers) {
      try {
        await this.rotate(c.id);
      } catch (err) {
        this.opts.log.warn("cannot rotate a container's log", { container: c.id.slice(0, 12), error: (err as Error).message });
      }
    }
  }

  private async rotate(id: string): Promise<void> {
    const logPath = (await this.opts.runtime.containerStatus({ containerId: id })).status?.logPath;
    if (!logPath) return;
    const size = (await stat(logPath).catch(() => undefined))?.size ?? 0;
    if (size <= this.opts.maxBytes) return;
    let target = `${logPath}.${stamp()}`;
    // Two rotations within a second (a very chatty container, a short interval) keep both.
    for (let n = 1; await stat(target).then(() => true, () => false); n++) target = `${logPath}.${stamp()}-${n}`;
    await rename(logPath, target);
    // Until the runtime reopens, conmon goes on writing into the renamed file: nothing is lost.
    await this.opts.runtime.reopenContainerLog({ containerId: id });
    const copies = await rotatedCopies(logPath);
    for (const old of copies.slice(0, Math.max(0, copies.length - (this.opts.maxFiles - 1)))) await unlink(old).catch(() => {});
  }
}
