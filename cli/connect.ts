// How CLI commands reach the daemon: --socket, then $BERTH_SOCKET, then the default path.
import type { CriClient } from "../cri/client";

export const DEFAULT_SOCKET = "/run/berth/berth.sock";

export interface CliContext {
  socket: string;
  client(): Promise<CriClient>;
  /** Lets the process exit: a gRPC channel keeps the event loop alive. */
  close(): void;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream;
}

export function cliContext(socket: string | undefined): CliContext {
  const path = socket || process.env.BERTH_SOCKET || DEFAULT_SOCKET;
  let client: CriClient | undefined;
  return {
    socket: path,
    client: async () => {
      if (!client) {
        const { CriClient } = await import("../cri/client");
        client = new CriClient(path);
      }
      return client;
    },
    close: () => client?.close(),
    out: process.stdout,
    err: process.stderr,
  };
}
