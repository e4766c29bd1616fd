// `berth serve`: the daemon. Flags override the config file, which overrides the defaults.
import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { createLogger, isLevel } from "../../runtime/log";
import { DEFAULT_CONFIG, type DaemonConfig, loadConfigFile, mergeConfig, validateConfig } from "../config";

const USAGE = `usage: berth serve [options]

  --socket PATH              CRI socket (default /run/berth/berth.sock, or STATE/berth.sock with --state)
  --root DIR                 persistent state (default /var/lib/berth)
  --state DIR                runtime state (default /run/berth)
  --config FILE              YAML configuration (schemas/config.schema.json)
  --insecure-registry HOST:PORT   allow plain HTTP for this registry (repeatable)
  --metrics-addr HOST:PORT   metrics and status listener (default 127.0.0.1:9464)
  --platform OS/ARCH         platform pulled from multi-platform images
  --log-level LEVEL          debug, info, warn, error
  --log-format FORMAT        json or text (default: text on a terminal)
  --local-registry           start a local registry on 127.0.0.1, fill it with a busybox image, trust it
  --manifests DIR            converge the node to this folder of Pod/ConfigMap/Deployment YAML (may be a git-sync symlink)
  --runtime-endpoint URL     the reconciler drives this CRI endpoint (unix:///...) instead of berth's runtime in-process
  --resync SECONDS           full resync period of the reconciler (default 30; 0 never)
`;

export async function run(argv: string[], _ctx?: unknown): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      socket: { type: "string" },
      root: { type: "string" },
      state: { type: "string" },
      config: { type: "string" },
      "insecure-registry": { type: "string", multiple: true },
      "metrics-addr": { type: "string" },
      platform: { type: "string" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      "local-registry": { type: "boolean" },
      manifests: { type: "string" },
      "runtime-endpoint": { type: "string" },
      resync: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const flags: Partial<DaemonConfig> = {};
  if (values.socket) flags.socket = values.socket;
  if (values.root) flags.root = values.root;
  if (values.state) flags.state = values.state;
  if (values["metrics-addr"]) flags.metricsAddr = values["metrics-addr"];
  if (values.platform) flags.platform = values.platform;
  if (values.manifests) flags.manifests = resolvePath(values.manifests);
  if (values["runtime-endpoint"] || values.resync) {
    const resync = values.resync !== undefined ? Number(values.resync) : undefined;
    if (resync !== undefined && !(resync >= 0)) throw new Error(`--resync must be a number of seconds, not "${values.resync}"`);
    // Only what was given: the config file's other reconciler settings stay.
    flags.reconciler = { ...(values["runtime-endpoint"] ? { runtimeEndpoint: values["runtime-endpoint"] } : {}), ...(resync !== undefined ? { resyncSeconds: resync } : {}) } as DaemonConfig["reconciler"];
  }
  if (values["insecure-registry"]) flags.insecureRegistries = values["insecure-registry"];
  if (values["log-level"]) {
    if (!isLevel(values["log-level"])) throw new Error(`--log-level must be debug, info, warn or error, not "${values["log-level"]}"`);
    flags.logLevel = values["log-level"];
  }
  if (values["log-format"]) {
    if (values["log-format"] !== "json" && values["log-format"] !== "text") throw new Error(`--log-format must be json or text`);
    flags.logFormat = values["log-format"];
  }
  validateConfig(flags, "command-line flags");
  const file = values.config ? await loadConfigFile(values.config) : {};
  const config = mergeConfig(DEFAULT_CONFIG, file, flags);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });

  const cleanups: Array<() => Promise<void>> = [];
  let localRegistry: Awaited<ReturnType<typeof import("./local-registry").startLocalRegistry>> | undefined;
  if (values["local-registry"]) {
    const { startLocalRegistry } = await import("./local-registry");
    localRegistry = await startLocalRegistry(config, log);
    cleanups.push(localRegistry.stop);
  }
  const { startDaemon } = await import("./daemon");
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, log);
  } catch (err) {
    for (const c of cleanups) await c().catch(() => {});
    throw err;
  }
  cleanups.unshift(daemon.close);
  if (localRegistry) {
    try {
      await localRegistry.fill(daemon.images);
    } catch (err) {
      log.error("filling the local registry failed", { error: (err as Error).message });
    }
  }

  if (daemon.reconciler) {
    try {
      await daemon.reconciler.start();
    } catch (err) {
      for (const c of cleanups) await c().catch(() => {});
      throw new Error(`cannot start the reconciler on ${config.manifests}: ${(err as Error).message}`);
    }
    log.info("reconciler started", { manifests: config.manifests, resyncSeconds: config.reconciler.resyncSeconds, backend: config.reconciler.runtimeEndpoint ?? "in-process" });
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info("shutting down", { signal });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  for (const c of cleanups) await c().catch((err: unknown) => log.warn("shutdown step failed", { error: String(err) }));
  // Everything is closed; a handle something forgot must not keep a stopped daemon alive.
  setTimeout(() => {
    // Which kinds (TCPSocketWrap, Timeout, FSEventWrap…): where to look for what was not closed.
    log.warn("exiting with handles still open after shutdown", { handles: process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap") });
    process.exit(0);
  }, 2000).unref();
  return 0;
}
