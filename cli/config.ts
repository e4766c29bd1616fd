// The daemon's configuration: defaults, then the --config YAML file (checked against
// schemas/config.schema.json), then command-line flags.
import { readFile } from "node:fs/promises";
import { Ajv } from "ajv";
import { load as loadYaml } from "js-yaml";
import { InvalidArgumentError } from "../runtime/errors";
import schema from "../schemas/config.schema.json";

export interface EndpointConfig {
  url: string;
  pathPrefix?: string;
  caFile?: string;
  insecureSkipVerify?: boolean;
  auth?: AuthConfigFile;
}

export interface AuthConfigFile {
  username?: string;
  password?: string;
  auth?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface RegistryConfig {
  host: string;
  mirrors?: EndpointConfig[];
  insecure?: boolean;
  caFile?: string;
  insecureSkipVerify?: boolean;
  auth?: AuthConfigFile;
  skipSelf?: boolean;
}

export interface CniConfig {
  confDir: string;
  binDirs: string[];
  bridge: string;
  subnet: string;
}

export interface RuntimesConfig {
  default: string;
  handlers: Record<string, { path: string; root?: string }>;
  /**
   * containerd's restrict_oom_score_adj: a container's oom_score_adj is never below the daemon's
   * own. Unset: on where the daemon cannot lower a score (no CAP_SYS_RESOURCE).
   */
  restrictOomScoreAdj?: boolean;
}

export interface DaemonConfig {
  root: string;
  state: string;
  socket: string;
  metricsAddr: string;
  logLevel: "debug" | "info" | "warn" | "error";
  logFormat?: "json" | "text";
  platform?: string;
  images: { maxConcurrentDownloads: number; blobAttempts: number; dockerConfig?: string };
  insecureRegistries: string[];
  registries: RegistryConfig[];
  cgroupRoot: string;
  cni: CniConfig;
  runtimes: RuntimesConfig;
  /** The folder the reconciler converges to; none: no reconciler (a plain CRI runtime). */
  manifests?: string;
  reconciler: {
    resyncSeconds: number;
    concurrency: number;
    runtimeEndpoint?: string;
    /** kubelet's container log rotation for the pods it runs: size ("10Mi" or bytes), files kept, check period. */
    containerLogMaxSize: string | number;
    containerLogMaxFiles: number;
    containerLogMonitorSeconds: number;
  };
  /** The streaming server behind CRI Exec, Attach and PortForward. */
  streaming: { addr: string; idleTimeoutSeconds: number };
}

export const DEFAULT_CONFIG: DaemonConfig = {
  root: "/var/lib/berth",
  state: "/run/berth",
  socket: "/run/berth/berth.sock",
  metricsAddr: "127.0.0.1:9464",
  logLevel: "info",
  images: { maxConcurrentDownloads: 3, blobAttempts: 5 },
  insecureRegistries: [],
  registries: [],
  cgroupRoot: "berth",
  cni: { confDir: "/etc/cni/net.d", binDirs: ["/usr/lib/cni", "/opt/cni/bin"], bridge: "berth0", subnet: "10.88.0.0/16" },
  runtimes: { default: "berth", handlers: { runc: { path: "/usr/sbin/runc" } } },
  reconciler: { resyncSeconds: 30, concurrency: 4, containerLogMaxSize: "10Mi", containerLogMaxFiles: 5, containerLogMonitorSeconds: 10 },
  streaming: { addr: "127.0.0.1:0", idleTimeoutSeconds: 4 * 3600 },
};

export function validateConfig(value: unknown, where: string): Partial<DaemonConfig> {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(schema);
  if (value === null || value === undefined) return {};
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`);
    throw new InvalidArgumentError(`${where}: invalid configuration: ${problems.join("; ")}`);
  }
  return value as Partial<DaemonConfig>;
}

export async function loadConfigFile(path: string): Promise<Partial<DaemonConfig>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = loadYaml(text, { filename: path });
  } catch (err) {
    throw new InvalidArgumentError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  return validateConfig(parsed, path);
}

export function mergeConfig(base: DaemonConfig, file: Partial<DaemonConfig>, flags: Partial<DaemonConfig>): DaemonConfig {
  const out: DaemonConfig = { ...base, ...file, ...flags };
  out.images = { ...base.images, ...file.images, ...flags.images };
  out.insecureRegistries = [...new Set([...(file.insecureRegistries ?? []), ...(flags.insecureRegistries ?? [])])];
  out.registries = [...(file.registries ?? []), ...(flags.registries ?? [])];
  out.cni = { ...base.cni, ...file.cni, ...flags.cni };
  out.reconciler = { ...base.reconciler, ...file.reconciler, ...flags.reconciler };
  out.streaming = { ...base.streaming, ...file.streaming, ...flags.streaming };
  out.runtimes = {
    default: flags.runtimes?.default ?? file.runtimes?.default ?? base.runtimes.default,
    handlers: { ...base.runtimes.handlers, ...file.runtimes?.handlers, ...flags.runtimes?.handlers },
    restrictOomScoreAdj: flags.runtimes?.restrictOomScoreAdj ?? file.runtimes?.restrictOomScoreAdj ?? base.runtimes.restrictOomScoreAdj,
  };
  if (!file.socket && !flags.socket && (file.state || flags.state)) out.socket = `${out.state}/berth.sock`;
  return out;
}
