// Pod networking through CNI plugins (DESIGN.md, decision 5), invoked as libcni invokes them:
// the first network configuration of the conf dir in lexical order, each plugin of the list run
// with CNI_COMMAND ADD in order (each given the previous one's result), DEL in reverse order with
// the stored ADD result, and the loopback plugin for `lo`, as containerd does. The ADD result is
// handed back to the caller, which stores it with the pod so DEL works after a daemon restart.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { FailedPreconditionError, InternalError } from "../errors";
import type { Logger } from "../log";
import type { PodNetwork, PodNetworkRequest } from "../pods/types";
import { writeFileAtomic } from "../store/atomic";
import { removeIdlePortmapChains } from "./portmap-chains";
import { defaultConflist, DEFAULT_CONFLIST_NAME, ensureBridge, type DefaultNetworkOptions } from "./default-network";



interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [k: string]: unknown;
}

export interface NetworkConfList {
  cniVersion: string;
  name: string;
  plugins: PluginConf[];
  /** Where it was read from. */
  file: string;
}

export interface CniOptions {
  confDir: string;
  binDirs: string[];
  /** berth's own network, written when the conf dir holds none. */
  defaults: DefaultNetworkOptions;
  log: Logger;
}

/** The first .conflist/.conf/.json file of `dir` in lexical order, as libcni picks it. */
export function loadNetworkConfig(dir: string): NetworkConfList | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /\.(conflist|conf|json)$/.test(f)).sort();
  } catch {
    return undefined;
  }
  for (const f of files) {
    const file = join(dir, f);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new FailedPreconditionError(`CNI configuration ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (Array.isArray(doc.plugins)) {
      return { cniVersion: String(doc.cniVersion ?? "1.0.0"), name: String(doc.name ?? ""), plugins: doc.plugins as PluginConf[], file };
    }
    if (typeof doc.type === "string") {
      // A single-plugin .conf is a list of one.
      return { cniVersion: String(doc.cniVersion ?? "1.0.0"), name: String(doc.name ?? ""), plugins: [doc as PluginConf], file };
    }
  }
  return undefined;
}

export function cniArgs(req: PodNetworkRequest): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${req.namespace};K8S_POD_NAME=${req.name};K8S_POD_INFRA_CONTAINER_ID=${req.podId};K8S_POD_UID=${req.uid}`;
}

/** The IP addresses (without prefix length) of a CNI 0.4 or 1.0 result. */
export function ipsOf(result: unknown): string[] {
  const ips = (result as { ips?: Array<{ address?: string }> } | undefined)?.ips ?? [];
  return ips.map((i) => String(i.address ?? "").split("/")[0]!).filter(Boolean);
}

export class CniNetwork implements PodNetwork {
  private ready?: Promise<void>;

  constructor(private opts: CniOptions) {}

  /**
   * berth's default network is written and its bridge made at the first pod that needs them, not
   * at daemon start: a daemon that never runs a networked pod changes nothing on the host.
   */
  private ensureInit(): Promise<void> {
    this.ready ??= this.init().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private findPlugin(type: string): string | undefined {
    for (const d of this.opts.binDirs) {
      const p = join(d, type);
      if (existsSync(p)) return p;
    }
    return undefined;
  }

  /** Writes berth's default network when the conf dir has none, and makes its bridge. */
  async init(): Promise<void> {
    let conf = loadNetworkConfig(this.opts.confDir);
    if (!conf) {
      const { mkdir } = await import("node:fs/promises");
      await mkdir(this.opts.confDir, { recursive: true, mode: 0o755 });
      await writeFileAtomic(join(this.opts.confDir, DEFAULT_CONFLIST_NAME), `${JSON.stringify(defaultConflist(this.opts.defaults), null, 2)}\n`);
      this.opts.log.info("wrote berth's default CNI network", { file: join(this.opts.confDir, DEFAULT_CONFLIST_NAME), bridge: this.opts.defaults.bridge, subnet: this.opts.defaults.subnet });
      conf = loadNetworkConfig(this.opts.confDir);
    }
    if (conf?.file.endsWith(DEFAULT_CONFLIST_NAME) && conf.name === "berth") {
      const bridge = conf.plugins.find((p) => p.type === "bridge");
      const range = (bridge?.ipam as { ranges?: Array<Array<{ subnet: string; gateway?: string }>> } | undefined)?.ranges?.[0]?.[0];
      if (bridge && range) await ensureBridge(String(bridge.bridge), range.subnet, range.gateway);
    }
  }

  async status(): Promise<{ ready: boolean; reason: string; message: string }> {
    let conf: NetworkConfList | undefined;
    try {
      conf = loadNetworkConfig(this.opts.confDir);
    } catch (err) {
      return { ready: false, reason: "NetworkPluginNotReady", message: (err as Error).message };
    }
    // None yet: berth writes its own at the first pod, so the network is ready if its plugins are there.
    const types = conf ? conf.plugins.map((p) => p.type) : ["bridge", "host-local", "portmap"];
    const missing = [...types, "loopback"].filter((t) => !this.findPlugin(t));
    if (missing.length) {
      const which = conf ? `network ${conf.name} in ${conf.file}` : `berth's default network, for ${this.opts.confDir} holds none`;
      return { ready: false, reason: "NetworkPluginNotReady", message: `CNI plugin(s) ${missing.join(", ")} not found in ${this.opts.binDirs.join(":")} (${which})` };
    }
    return { ready: true, reason: "", message: "" };
  }

  private conf(): NetworkConfList {
    const conf = loadNetworkConfig(this.opts.confDir);
    if (!conf) throw new FailedPreconditionError(`no CNI network configuration in ${this.opts.confDir}: pods cannot be networked`);
    return conf;
  }

  private async invoke(command: "ADD" | "DEL" | "CHECK", plugin: PluginConf, conf: { cniVersion: string; name: string }, req: PodNetworkRequest, ifName: string, prevResult?: unknown): Promise<unknown> {
    const path = this.findPlugin(plugin.type);
    if (!path) throw new FailedPreconditionError(`CNI plugin "${plugin.type}" not found in ${this.opts.binDirs.join(":")}`);
    const { capabilities, ...rest } = plugin;
    const stdin: Record<string, unknown> = { ...rest, cniVersion: conf.cniVersion, name: conf.name };
    if (prevResult !== undefined) stdin.prevResult = prevResult;
    if (capabilities?.portMappings && req.portMappings.length) stdin.runtimeConfig = { portMappings: req.portMappings };
    const env = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: req.podId,
      CNI_NETNS: req.netns,
      CNI_IFNAME: ifName,
      CNI_ARGS: cniArgs(req),
      CNI_PATH: this.opts.binDirs.join(":"),
    };
    const child = execFile(path, [], { env, timeout: 60_000, maxBuffer: 4 * 1024 * 1024 });
    child.stdin?.end(JSON.stringify(stdin));
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
    if (code !== 0) {
      let msg = stderr.trim() || stdout.trim();
      try {
        const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
        msg = `${e.msg ?? "error"}${e.details ? `: ${e.details}` : ""} (CNI error code ${e.code})`;
      } catch {}
      throw new InternalError(`CNI ${command} of pod ${req.namespace}/${req.name} failed in plugin "${plugin.type}" (network ${conf.name}): ${msg}`);
    }
    if (command !== "ADD") return prevResult;
    try {
      return JSON.parse(stdout);
    } catch {
      throw new InternalError(`CNI ADD: plugin "${plugin.type}" printed a result that is not JSON: ${stdout.slice(0, 200)}`);
    }
  }

  async setUp(req: PodNetworkRequest): Promise<{ ips: string[]; interfaceName: string; result: unknown }> {
    await this.ensureInit();
    const conf = this.conf();
    try {
      await this.invoke("ADD", { type: "loopback" }, { cniVersion: conf.cniVersion, name: "cni-loopback" }, req, "lo");
      let result: unknown;
      for (const p of conf.plugins) result = await this.invoke("ADD", p, conf, req, "eth0", result);
      const ips = ipsOf(result);
      return { ips, interfaceName: "eth0", result: { network: conf.name, cniVersion: conf.cniVersion, plugins: conf.plugins, result } };
    } catch (err) {
      // A half-made network is undone before the error goes back (the plugins' DEL tolerates what ADD never did).
      await this.tearDown(req).catch((e: unknown) => this.opts.log.warn("CNI DEL after a failed ADD failed too", { pod: `${req.namespace}/${req.name}`, error: (e as Error).message }));
      throw err;
    }
  }

  async tearDown(req: PodNetworkRequest, prev?: unknown): Promise<void> {
    const stored = prev as { network: string; cniVersion: string; plugins: PluginConf[]; result: unknown } | undefined;
    // DEL with the configuration the pod was set up with, even if the conf dir changed since.
    const conf = stored?.plugins ? { cniVersion: stored.cniVersion, name: stored.network, plugins: stored.plugins } : this.conf();
    const netns = req.netns && existsSync(req.netns) ? req.netns : "";
    const del = { ...req, netns };
    for (const p of [...conf.plugins].reverse()) await this.invoke("DEL", p, conf, del, "eth0", stored?.result);
    if (req.portMappings.length && conf.plugins.some((p) => p.type === "portmap")) {
      if (await removeIdlePortmapChains()) this.opts.log.debug("removed portmap's idle nat chains: no hostPort is left on this host");
    }
  }

  async setPodCidr(cidr: string): Promise<void> {
    // Not written yet: it will be, with this subnet.
    this.opts.defaults = { ...this.opts.defaults, subnet: cidr };
    const conf = loadNetworkConfig(this.opts.confDir);
    if (!conf?.file.endsWith(DEFAULT_CONFLIST_NAME) || conf.name !== "berth") return;
    const next = defaultConflist({ ...this.opts.defaults, subnet: cidr });
    await writeFileAtomic(conf.file, `${JSON.stringify(next, null, 2)}\n`);
    this.opts.log.info("pod CIDR changed; berth's default CNI network follows it", { subnet: cidr });
    this.ready = undefined;
    await this.ensureInit();
  }
}


