// What the container operations need from a container's monitor and OCI runtime. The daemon's
// implementation drives conmon (runtime/monitor/) with berth's runtime or runc behind it.
import type { ContainerRecord, RuntimeHandler } from "./types";
import type { ExecSession, StdioSession, TerminalSize } from "../api/streaming";

export type RuntimeStatus = "created" | "running" | "paused" | "stopped" | "absent";

export interface ContainerExit {
  exitCode: number;
  /** Milliseconds since the epoch. */
  finishedAt: number;
  oomKilled: boolean;
  /** Set when the exit status was lost (the monitor died before it could record one): why. */
  lost?: string;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface ContainerMonitor {
  /** Starts conmon, which runs the runtime's `create`; resolves with the init's and conmon's pids. */
  create(rec: ContainerRecord, handler: RuntimeHandler): Promise<{ pid: number; conmonPid: number }>;
  start(rec: ContainerRecord, handler: RuntimeHandler): Promise<void>;
  status(rec: ContainerRecord, handler: RuntimeHandler): Promise<RuntimeStatus>;
  kill(rec: ContainerRecord, handler: RuntimeHandler, signal: number, all: boolean): Promise<void>;
  /** Removes the runtime's container (forcibly) and its cgroup; absent is fine. */
  delete(rec: ContainerRecord, handler: RuntimeHandler): Promise<void>;
  /** The exit conmon recorded, if the container has exited. */
  exitOf(rec: ContainerRecord): Promise<ContainerExit | undefined>;
  /** Calls back with a container id whenever conmon records an exit; returns the unsubscribe. */
  watchExits(onExit: (id: string) => void): () => void;
  execSync(rec: ContainerRecord, handler: RuntimeHandler, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResult>;
  reopenLog(rec: ContainerRecord): Promise<void>;
  /** Runs `cmd` in the container through conmon's exec path, attached: stdio streamed, tty optional. */
  execAttach(rec: ContainerRecord, handler: RuntimeHandler, cmd: string[], opts: { tty: boolean; stdin: boolean; size?: TerminalSize }): Promise<ExecSession>;
  /** Attaches to the container's own stdio through conmon's attach socket. */
  attach(rec: ContainerRecord): Promise<StdioSession>;
  /** Removes conmon's files for the container (exit file, persist dir) and ends conmon if it lingers. */
  cleanup(rec: ContainerRecord): Promise<void>;
}
