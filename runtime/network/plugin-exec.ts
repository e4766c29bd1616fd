// One CNI plugin execution, as the spec's execution protocol (section 2) and libcni define it:
// the binary found by name in the bin dirs, the invocation's parameters in CNI_* environment
// variables, the plugin configuration derived for this request on stdin (section 3), the result
// or a structured error on stdout.
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CapabilityArgs, CniCommand, NetworkConfigList, PluginConfig, PodNetworkRequest } from "./types";

export interface Invocation {
  command: CniCommand;
  containerId: string;
  /** "" only for DEL, when the namespace is gone (the spec makes CNI_NETNS optional there). */
  netns: string;
  ifName: string;
  /** CNI_ARGS. */
  args: string;
  binDirs: string[];
}

export interface PluginExit {
  /** The exit code, or null when a signal (the timeout's SIGKILL) ended the plugin. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** What a PATH-less daemon still needs: plugins run iptables, ip and friends from sbin. */
const FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** libcni retries a binary that is being replaced (ETXTBSY) this many times, a second apart. */
const TEXT_BUSY_RETRIES = 5;

/** The plugin binary: the first regular, executable file named `type` in the bin dirs. */
export function findPlugin(type: string, binDirs: string[]): string | undefined {
  if (type.includes("/")) return undefined;
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      if (statSync(path).isFile()) {
        accessSync(path, constants.X_OK);
        return path;
      }
    } catch {
      // Not here (or not executable): the next dir may have it.
    }
  }
  return undefined;
}

/** CNI_ARGS as kubelet's runtimes pass it; IgnoreUnknown lets plugins that know none of the keys accept them. */
export function cniArgs(req: PodNetworkRequest): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${req.namespace};K8S_POD_NAME=${req.name};K8S_POD_INFRA_CONTAINER_ID=${req.podId};K8S_POD_UID=${req.uid}`;
}

/**
 * The plugin's environment: the daemon's own, as libcni passes it (plugins may need a proxy or
 * an xtables lock path), with stale CNI_* variables replaced by this invocation's.
 */
export function pluginEnv(base: NodeJS.ProcessEnv, inv: Invocation): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
  env.PATH ||= FALLBACK_PATH;
  env.CNI_COMMAND = inv.command;
  env.CNI_CONTAINERID = inv.containerId;
  env.CNI_NETNS = inv.netns;
  env.CNI_IFNAME = inv.ifName;
  env.CNI_ARGS = inv.args;
  env.CNI_PATH = inv.binDirs.join(":");
  return env;
}

/**
 * The request configuration for one plugin of `list` (spec, section 3): the plugin's object with
 * the list's name and cniVersion, runtimeConfig holding the capability arguments the plugin
 * declares, prevResult when there is one, and without "capabilities".
 */
export function pluginStdin(list: NetworkConfigList, plugin: PluginConfig, caps: CapabilityArgs, prevResult?: unknown): string {
  const { capabilities, ...conf } = plugin;
  const request: Record<string, unknown> = { ...conf, name: list.name, cniVersion: list.cniVersion };
  delete request.runtimeConfig;
  delete request.prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, declared] of Object.entries(capabilities ?? {})) {
    const value = (caps as Record<string, unknown>)[cap];
    if (declared && value !== undefined) runtimeConfig[cap] = value;
  }
  if (Object.keys(runtimeConfig).length) request.runtimeConfig = runtimeConfig;
  if (prevResult !== undefined) request.prevResult = prevResult;
  return JSON.stringify(request);
}

/** Runs the plugin at `path` to completion; SIGKILLs it after `timeoutMs`. */
export async function execPlugin(path: string, env: Record<string, string>, stdin: string, timeoutMs: number): Promise<PluginExit> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await execOnce(path, env, stdin, timeoutMs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ETXTBSY" || attempt >= TEXT_BUSY_RETRIES) throw err;
      await sleep(1000);
    }
  }
}

function execOnce(path: string, env: Record<string, string>, stdin: string, timeoutMs: number): Promise<PluginExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      // A plugin that logs without end must not grow the daemon without end.
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    // A plugin that exits without reading stdin makes the write fail with EPIPE; its exit says more.
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}
