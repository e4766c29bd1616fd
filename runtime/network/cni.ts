// Pod networking through CNI plugins (DESIGN.md, decision 5), run the way libcni runs a network
// configuration list, without libcni: ADD through the plugins in order, each given the previous
// one's result; DEL in reverse order, each given the final ADD result; the loopback plugin for
// the pod's `lo` first, as containerd does. The ADD result goes back to the pod service together
// with the configuration it was made with, and comes back for DEL, so a pod is torn down the way
// it was set up even after a daemon restart or a change in the conf dir.
import { statfsSync } from "node:fs";
import { isIP } from "node:net";
import { performance } from "node:perf_hooks";
import { FailedPreconditionError, InternalError, InvalidArgumentError } from "../errors";
import type { Logger } from "../log";
import { writeFileAtomic } from "../store/atomic";
import { SingleFlight } from "../sync/singleflight";
import { loadNetworkConfig, pluginTypesOf } from "./conflist";
import { ipsOf, parseResult, pluginFailure, podInterfaceOf } from "./cni-result";
import { DEFAULT_NETWORK_NAME, defaultConflist, gatewayOf, ownBridgeOf, withSubnet, writeDefaultNetwork } from "./default-network";
import { ensureBridge } from "./host-bridge";
import { formatCidr, parseIpv4Cidr } from "./ipv4-cidr";
import { ensureLocalnetGuard } from "./localnet-guard";
import { cniArgs, execPlugin, findPlugin, pluginEnv, pluginStdin } from "./plugin-exec";
import { PortmapChains } from "./portmap-chains";
import type {
  CapabilityArgs,
  CniCommand,
  CniResult,
  DefaultNetworkOptions,
  LoadedNetworkConfig,
  NetworkConfigList,
  NetworkStatus,
  PluginConfig,
  PodNetwork,
  PodNetworkRequest,
  PodNetworkResult,
  PortMapping,
  StoredAttachment,
} from "./types";

export interface CniNetworkOptions {
  confDir: string;
  /** Searched in order for plugin binaries, and passed to plugins as CNI_PATH. */
  binDirs: string[];
  /** berth's own network, written when the conf dir holds none. */
  defaults: DefaultNetworkOptions;
  log: Logger;
  /** How long one plugin may run before it is killed (default 60 s). */
  pluginTimeoutMs?: number;
  /** The environment plugins start from (default: the daemon's). */
  env?: NodeJS.ProcessEnv;
}

const POD_IFNAME = "eth0";
/** containerd's loopback network; 0.3.1 is a version every loopback plugin still in use speaks. */
const LOOPBACK: NetworkConfigList = { cniVersion: "0.3.1", name: "cni-loopback", plugins: [{ type: "loopback" }] };
/** kubelet's reason for a NetworkReady=false condition. */
const NOT_READY = "NetworkPluginNotReady";
/** statfs(2) f_type of a namespace file (a pinned namespace is a bind mount of one). */
const NSFS_MAGIC = 0x6e736673;
/** What CNI accepts as a container id. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PROTOCOLS = new Set(["tcp", "udp", "sctp"]);

export class CniNetwork implements PodNetwork {
  /** Why berth's own bridge could not be set up, while that is so (NetworkReady says it). */
  private bridgeFailure: string | undefined;
  private readonly portmapChains = new PortmapChains();
  /** Concurrent first pods write berth's network once, and set its bridge up once. */
  private readonly once = new SingleFlight<void>();

  constructor(private readonly opts: CniNetworkOptions) {}

  /**
   * Writes berth's default network if the conf dir holds none, and sets up its bridge if it is the
   * network in use. Optional: the first setUp does the same.
   */
  async init(): Promise<void> {
    const own = ownBridgeOf(await this.configForPods());
    if (own) await this.prepareOwnBridge(own);
  }

  /**
   * CRI's NetworkReady: a usable configuration (or none, when berth's own network will be written
   * at the first pod), every plugin binary it needs, and berth's bridge if it is berth's network.
   */
  async status(): Promise<NetworkStatus> {
    let conf: NetworkConfigList;
    let source: string;
    try {
      const loaded = loadNetworkConfig(this.opts.confDir);
      conf = loaded ?? defaultConflist(this.opts.defaults);
      source = loaded ? `network "${loaded.name}" of ${loaded.file}` : `berth's default network, which berth writes to ${this.opts.confDir} at the first pod`;
      if (loaded && this.bridgeFailure && ownBridgeOf(loaded)) return notReady(this.bridgeFailure);
    } catch (err) {
      return notReady((err as Error).message);
    }
    const missing = pluginTypesOf([...conf.plugins, ...LOOPBACK.plugins]).filter((t) => !findPlugin(t, this.opts.binDirs));
    if (missing.length) return notReady(`CNI plugin${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not found in ${this.opts.binDirs.join(":")} (${source})`);
    return { ready: true, reason: "", message: "" };
  }

  /** ADD: the pod joins the network. On failure, what the plugins did is undone (DEL) before the error is thrown. */
  async setUp(req: PodNetworkRequest): Promise<PodNetworkResult> {
    checkPodId(req.podId);
    if (!isNamespaceFile(req.netns)) throw new FailedPreconditionError(`pod ${podOf(req)}: its network namespace "${req.netns}" is not a mounted namespace file; CNI ADD needs one`);
    const caps = capabilityArgsOf(req.portMappings);
    const conf = await this.configForPods();
    const own = ownBridgeOf(conf);
    const add = async () => {
      if (own) await this.prepareOwnBridge(own);
      return this.add(conf, req, caps);
    };
    const result = own && usesPortmap(conf, caps) ? await this.portmapChains.whileAdding(add) : await add();
    const stored: StoredAttachment = { network: conf.name, cniVersion: conf.cniVersion, plugins: conf.plugins, ifName: POD_IFNAME, capabilityArgs: caps, result };
    return { ips: ipsOf(result), interfaceName: podInterfaceOf(result, POD_IFNAME), result: stored };
  }

  /**
   * DEL: the pod leaves the network. `prev` is PodNetworkResult.result of its setUp; without it
   * (ADD never finished, or a crash came first) DEL runs with the current configuration and no
   * prevResult, which plugins must accept. Repeating it, or running it after the namespace is
   * gone, succeeds.
   */
  async tearDown(req: PodNetworkRequest, prev?: unknown): Promise<void> {
    checkPodId(req.podId);
    const stored = this.storedAttachmentOf(req, prev);
    const conf = stored ? { cniVersion: stored.cniVersion, name: stored.network, plugins: stored.plugins } : loadNetworkConfig(this.opts.confDir);
    if (!conf) {
      this.opts.log.debug("no CNI network to remove the pod from: it was never added to one", { pod: podOf(req), confDir: this.opts.confDir });
      return;
    }
    const caps = stored?.capabilityArgs ?? capabilityArgsOf(req.portMappings);
    await this.del(conf, req, caps, stored?.result, stored?.ifName ?? POD_IFNAME);
    if (conf.name === DEFAULT_NETWORK_NAME && usesPortmap(conf, caps)) {
      try {
        if (await this.portmapChains.removeIfIdle()) this.opts.log.debug("removed portmap's nat chains: no hostPort is left on this host");
      } catch (err) {
        this.opts.log.warn("cannot remove portmap's idle nat chains", { error: (err as Error).message });
      }
    }
  }

  /** CHECK (CNI 0.4.0 and later): every plugin confirms the pod's network is as ADD left it. */
  async check(req: PodNetworkRequest, prev: unknown): Promise<void> {
    checkPodId(req.podId);
    const stored = this.storedAttachmentOf(req, prev);
    if (!stored) throw new FailedPreconditionError(`pod ${podOf(req)}: CNI CHECK needs the result of its ADD, and none was given`);
    if (!atLeast(stored.cniVersion, "0.4.0")) return;
    const conf = { cniVersion: stored.cniVersion, name: stored.network, plugins: stored.plugins };
    for (const plugin of conf.plugins) await this.invoke("CHECK", conf, plugin, req, stored.ifName ?? POD_IFNAME, stored.capabilityArgs ?? {}, stored.result);
  }

  /**
   * CRI UpdateRuntimeConfig: berth's own network takes the pod CIDR (its first IPv4 range) and
   * its bridge the new address. A network berth did not write is left as it is.
   */
  async setPodCidr(cidr: string): Promise<void> {
    const v4 = cidr
      .split(",")
      .map((c) => c.trim())
      .find((c) => c && !c.includes(":"));
    if (!v4) throw new InvalidArgumentError(`pod CIDR "${cidr}" has no IPv4 range; berth's default network is IPv4 only`);
    const subnet = formatCidr(parseIpv4Cidr(v4, "pod CIDR"));
    gatewayOf(subnet); // refuses a CIDR with no room for the bridge's address and a pod
    const conf = loadNetworkConfig(this.opts.confDir);
    const own = conf && ownBridgeOf(conf);
    if (!conf || !own) {
      this.opts.log.info("pod CIDR not applied: the CNI network in use is not berth's own", { podCidr: subnet, network: conf?.file });
      return;
    }
    if (formatCidr(parseIpv4Cidr(own.subnet)) === subnet) return;
    await writeFileAtomic(conf.file, `${JSON.stringify(withSubnet(conf, subnet), null, 2)}\n`);
    this.opts.log.info("pod CIDR changed; berth's network follows it", { file: conf.file, from: own.subnet, to: subnet });
    await this.prepareOwnBridge({ bridge: own.bridge, subnet }, own.subnet);
  }

  /** The conf dir's network; berth's own, written now, when the dir holds none. */
  private async configForPods(): Promise<LoadedNetworkConfig> {
    const conf = loadNetworkConfig(this.opts.confDir);
    if (conf) return conf;
    await this.once.do(`write ${this.opts.confDir}`, async () => {
      const file = await writeDefaultNetwork(this.opts.confDir, defaultConflist(this.opts.defaults));
      this.opts.log.info("wrote berth's default CNI network", { file, bridge: this.opts.defaults.bridge, subnet: this.opts.defaults.subnet });
    });
    const written = loadNetworkConfig(this.opts.confDir);
    if (!written) throw new InternalError(`berth wrote its default CNI network to ${this.opts.confDir}, but it cannot be read back as the network in use`);
    return written;
  }

  private async add(conf: NetworkConfigList, req: PodNetworkRequest, caps: CapabilityArgs): Promise<CniResult | undefined> {
    let result: CniResult | undefined;
    try {
      await this.invoke("ADD", LOOPBACK, LOOPBACK.plugins[0]!, req, "lo", {}, undefined);
      for (const plugin of conf.plugins) result = await this.invoke("ADD", conf, plugin, req, POD_IFNAME, caps, result);
      return result;
    } catch (err) {
      // CNI wants a DEL after a failed ADD (DEL tolerates what ADD never got to). Every plugin is
      // asked, even after one fails: the error to report is the ADD's, and a plugin whose ADD
      // failed may well fail its DEL for the same reason.
      const failures = await this.del(conf, req, caps, result, POD_IFNAME, { bestEffort: true });
      if (failures.length) {
        this.opts.log.warn("CNI DEL after a failed ADD failed too; what those plugins made stays until the pod is removed", { pod: podOf(req), errors: failures.map((e) => e.message) });
      }
      throw err;
    }
  }

  /**
   * DEL in reverse order, then loopback. It stops at the first failure, as the spec says, unless
   * `bestEffort`; the failures it went past are returned.
   */
  private async del(conf: NetworkConfigList, req: PodNetworkRequest, caps: CapabilityArgs, result: CniResult | undefined, ifName: string, opts: { bestEffort?: boolean } = {}): Promise<Error[]> {
    // A namespace that is gone (or a pin file that no longer holds one) is passed as "", which the
    // spec allows for DEL and the plugins answer by releasing what lives outside the namespace.
    const gone = { ...req, netns: isNamespaceFile(req.netns) ? req.netns : "" };
    // libcni gives DEL a prevResult from 0.4.0 on; older plugins do not expect one.
    const prev = atLeast(conf.cniVersion, "0.4.0") ? result : undefined;
    const failures: Error[] = [];
    const attempt = async (run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        if (!opts.bestEffort) throw err;
        failures.push(err as Error);
      }
    };
    for (const plugin of [...conf.plugins].reverse()) await attempt(() => this.invoke("DEL", conf, plugin, gone, ifName, caps, prev));
    await attempt(() => this.invoke("DEL", LOOPBACK, LOOPBACK.plugins[0]!, gone, "lo", {}, undefined));
    return failures;
  }

  /** Runs one plugin; for ADD resolves with its result, otherwise with `prevResult`. */
  private async invoke(command: CniCommand, list: NetworkConfigList, plugin: PluginConfig, req: PodNetworkRequest, ifName: string, caps: CapabilityArgs, prevResult: CniResult | undefined): Promise<CniResult | undefined> {
    const what = `CNI ${command} of pod ${podOf(req)} failed in plugin "${plugin.type}" of network "${list.name}"`;
    const path = findPlugin(plugin.type, this.opts.binDirs);
    if (!path) throw new FailedPreconditionError(`${what}: no executable "${plugin.type}" in ${this.opts.binDirs.join(":")}`);
    const timeoutMs = this.opts.pluginTimeoutMs ?? 60_000;
    const env = pluginEnv(this.opts.env ?? process.env, { command, containerId: req.podId, netns: req.netns, ifName, args: cniArgs(req), binDirs: this.opts.binDirs });
    const started = performance.now();
    const exit = await execPlugin(path, env, pluginStdin(list, plugin, caps, prevResult), timeoutMs).catch((err: unknown) => {
      throw new InternalError(`${what}: cannot run ${path}: ${(err as Error).message}`, { cause: err });
    });
    this.opts.log.debug("CNI plugin ran", { pod: podOf(req), command, plugin: plugin.type, exitCode: exit.code, ms: Math.round(performance.now() - started) });
    if (exit.code !== 0) throw pluginFailure(what, exit, timeoutMs);
    if (command !== "ADD") return prevResult;
    const result = parseResult(exit.stdout);
    if (!result) throw new InternalError(`${what}: it exited 0 but printed no result object: ${exit.stdout.trim().slice(0, 200) || "(nothing)"}`);
    return result;
  }

  private prepareOwnBridge(own: { bridge: string; subnet: string }, replacing?: string): Promise<void> {
    return this.once.do(`bridge ${own.bridge} ${own.subnet} ${replacing ?? ""}`, async () => {
      try {
        await ensureBridge(own.bridge, own.subnet, { replacing });
        await ensureLocalnetGuard(own.bridge);
        this.bridgeFailure = undefined;
      } catch (err) {
        this.bridgeFailure = `berth's network bridge ${own.bridge} (${own.subnet}) cannot be set up: ${(err as Error).message}`;
        throw new FailedPreconditionError(this.bridgeFailure, { cause: err });
      }
    });
  }

  /** The stored attachment of `prev`, or undefined (with a warning if `prev` was something else). */
  private storedAttachmentOf(req: PodNetworkRequest, prev: unknown): StoredAttachment | undefined {
    if (prev === undefined || prev === null) return undefined;
    const s = prev as Partial<StoredAttachment>;
    if (typeof s.network === "string" && typeof s.cniVersion === "string" && Array.isArray(s.plugins) && s.plugins.every((p) => typeof p?.type === "string")) {
      return s as StoredAttachment;
    }
    this.opts.log.warn("the pod's stored CNI result is not one berth wrote; using the current network configuration", { pod: podOf(req) });
    return undefined;
  }
}

/** The CNI portMappings capability argument (CONVENTIONS.md); a CRI hostPort of 0 is no mapping. */
export function capabilityArgsOf(mappings: PortMapping[]): CapabilityArgs {
  const portMappings = mappings
    .filter((m) => m.hostPort > 0)
    .map((m) => {
      const protocol = String(m.protocol).toLowerCase();
      const port = (n: number) => Number.isInteger(n) && n > 0 && n <= 65535;
      if (!PROTOCOLS.has(protocol) || !port(m.containerPort) || !port(m.hostPort) || (m.hostIp && !isIP(m.hostIp))) {
        throw new InvalidArgumentError(
          `port mapping ${m.hostIp ? `${m.hostIp}:` : ""}${m.hostPort} -> ${m.containerPort}/${m.protocol} is not valid: ports are 1-65535, protocols tcp, udp or sctp, host_ip an IP address or empty`,
        );
      }
      return { hostPort: m.hostPort, containerPort: m.containerPort, protocol, ...(m.hostIp ? { hostIP: m.hostIp } : {}) };
    });
  return portMappings.length ? { portMappings } : {};
}

function usesPortmap(conf: NetworkConfigList, caps: CapabilityArgs): boolean {
  return Boolean(caps.portMappings?.length) && conf.plugins.some((p) => p.type === "portmap");
}

function isNamespaceFile(path: string): boolean {
  if (!path) return false;
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/** semver's a ≥ b for CNI versions (x.y.z, missing parts 0). */
function atLeast(version: string, min: string): boolean {
  const a = version.split(".").map((n) => Number.parseInt(n, 10) || 0);
  const b = min.split(".").map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

function checkPodId(podId: string): void {
  if (!CONTAINER_ID.test(podId)) throw new InvalidArgumentError(`pod id "${podId}" cannot be a CNI container id: letters, digits, "_", "." and "-", starting with a letter or digit`);
}

function podOf(req: PodNetworkRequest): string {
  return `${req.namespace}/${req.name} (${req.podId.slice(0, 12)})`;
}

function notReady(message: string): NetworkStatus {
  return { ready: false, reason: NOT_READY, message };
}
