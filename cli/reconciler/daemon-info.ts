// Where the daemon behind a socket keeps its status API and its root: `daemon.json`, which
// `berth serve` writes next to its socket.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface DaemonInfo {
  http: string;
  root: string;
}

export async function daemonInfo(socket: string): Promise<DaemonInfo | undefined> {
  const text = await readFile(join(dirname(socket.replace(/^unix:\/\//, "")), "daemon.json"), "utf8").catch(() => undefined);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as DaemonInfo;
  } catch {
    return undefined;
  }
}
