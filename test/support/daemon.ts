// Starts a real `berth serve` (the built bundle, as users run it) in temp directories and stops
// it by PID. Each daemon gets its own root, state, socket and a free metrics port.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { CriClient } from "../../cri/client";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BERTH_JS = join(REPO, "dist", "berth.js");

export interface TestDaemon {
  root: string;
  state: string;
  socket: string;
  client: CriClient;
  pid: number;
  logs(): string;
  /** Run the berth CLI against this daemon. */
  cli(args: string[], opts?: { input?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** SIGKILL the daemon (a crash), keeping its directories for a restart. */
  kill(): Promise<void>;
  /** Start a new daemon process on the same directories. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface DaemonOptions {
  args?: string[];
  insecureRegistries?: string[];
  /** Holds root/ and state/ (and config.yaml); the caller owns it and removes it. Default: a temp dir that stop() removes. */
  dir?: string;
  /** Written to DIR/config.yaml and passed as `--config` (schemas/config.schema.json; JSON is YAML). */
  config?: Record<string, unknown>;
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  if (!existsSync(BERTH_JS)) throw new Error(`${BERTH_JS} is missing: run bin/setup (bin/test does) before the tests`);
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "berth-test-")));
  const root = join(dir, "root");
  const state = join(dir, "state");
  const socket = join(state, "berth.sock");
  let output = "";
  let child: ChildProcess;
  // Every test daemon keeps its CNI configuration in its own directory: none writes to
  // /etc/cni/net.d or makes berth's default bridge on the host, whatever the test asks of it.
  const given = opts.config ?? {};
  const config = { ...given, cni: { confDir: join(dir, "cni"), bridge: `bd${process.pid % 100000}`, subnet: "10.93.0.0/24", ...(given.cni as object | undefined) } };
  await mkdir(dir, { recursive: true });
  const configFile = join(dir, "config.yaml");
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const launch = async () => {
    const args = [BERTH_JS, "serve", "--root", root, "--state", state, "--socket", socket, "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"];
    args.push("--config", configFile);
    for (const r of opts.insecureRegistries ?? []) args.push("--insecure-registry", r);
    args.push(...(opts.args ?? []));
    // After a restart the log already holds the last run's "berth serving": look past it.
    const from = output.length;
    child = spawn(process.execPath, ["--enable-source-maps", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`berth serve exited with ${child.exitCode}:\n${output.slice(from)}`);
      if (output.indexOf('"berth serving"', from) !== -1) return;
      await sleep(20);
    }
    child.kill("SIGKILL");
    await waitExit(child);
    throw new Error(`berth serve did not come up within 6 s:\n${output.slice(from)}`);
  };
  try {
    await launch();
  } catch (err) {
    if (!opts.dir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let client = new CriClient(socket);

  const d: TestDaemon = {
    root,
    state,
    socket,
    get client() {
      return client;
    },
    get pid() {
      return child.pid!;
    },
    logs: () => output,
    cli: (args, o) =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, [BERTH_JS, "--socket", socket, ...args], { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        p.stdout.on("data", (x: Buffer) => (stdout += x.toString()));
        p.stderr.on("data", (x: Buffer) => (stderr += x.toString()));
        p.stdin.end(o?.input ?? "");
        p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
      }),
    kill: async () => {
      client.close();
      child.kill("SIGKILL");
      await waitExit(child);
    },
    restart: async () => {
      await launch();
      client = new CriClient(socket);
    },
    stop: async () => {
      client.close();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await waitExit(child);
        clearTimeout(t);
      }
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
  return d;
}
