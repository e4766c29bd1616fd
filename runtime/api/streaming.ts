// Streaming sessions (CRI Exec, Attach, PortForward) as the runtime layer offers them: the
// streaming server (cri/streaming) speaks SPDY or WebSocket to the client and moves bytes between
// the client's streams and these. The URLs CRI returns are the server's business; the runtime's is
// to check the target and run the session.
import type { Socket } from "node:net";

export interface TerminalSize {
  width: number;
  height: number;
}

export interface TerminalSize {
  width: number;
  height: number;
}

/** A process's stdio as a streaming session sees it (exec, attach). */
export interface StdioSession {
  stdout: NodeJS.ReadableStream;
  stderr: NodeJS.ReadableStream;
  writeStdin(data: Buffer | string): void;
  /** End of stdin: the process reads EOF. */
  closeStdin(): void;
  resize(size: TerminalSize): Promise<void>;
  /** Leaves the process running (attach) or, for an exec, drops its streams. */
  detach(): void;
  /** Resolves when the output is over. */
  closed: Promise<void>;
}

export interface ExecSession extends StdioSession {
  /** The exec'd process's exit code. */
  exitCode: Promise<number>;
}

export interface StreamingRuntime {
  /** Checks that the container exists and runs (CRI Exec's preconditions), without starting anything. */
  checkExec(containerId: string): Promise<void>;
  /** Checks that the container exists and runs, and returns whether it has a tty and stdin (Attach). */
  checkAttach(containerId: string): Promise<{ tty: boolean; stdin: boolean }>;
  /** Checks that the pod exists and is ready (PortForward). */
  checkPod(podSandboxId: string): Promise<void>;
  exec(containerId: string, cmd: string[], opts: { tty: boolean; stdin: boolean; size?: TerminalSize }): Promise<ExecSession>;
  attach(containerId: string): Promise<StdioSession>;
  /** A TCP connection to `port` on the pod's loopback, made in the pod's network namespace. */
  dialPod(podSandboxId: string, port: number): Promise<Socket>;
}
