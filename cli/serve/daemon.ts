// Wires berth's daemon together: stores on disk, the image service, the CRI gRPC server and the
// HTTP listener. Each part is built here and handed to the next; none reaches for a global.
import { mkdir } from "node:fs/promises";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { berthHandlers } from "../../cri/berth-service";
import { StreamingServer } from "../../cri/streaming/server";
import type { Reconciler } from "../../reconciler/reconciler";
import { writeFileAtomic } from "../../runtime/store/atomic";
import { runtimeServiceHandlers } from "../../cri/runtime-service";
import { imageHandlers } from "../../cri/images";
import { startCriServer } from "../../cri/server";
import { FileContentStore } from "../../runtime/image/content/store";
import { importImages } from "../../runtime/image/import";
import { hostPlatform, parsePlatform } from "../../runtime/image/platform";
import { pushImage } from "../../runtime/image/push";
import { RegistryResolver } from "../../runtime/image/registry/resolver";
import { LocalImageService } from "../../runtime/image/service";
import { ImageStore } from "../../runtime/image/store";
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import type { Logger } from "../../runtime/log";
import { ConmonMonitor } from "../../runtime/monitor/conmon-driver";
import { decideOomScoreAdjFloor } from "../../runtime/oci/oom-score";
import { CniNetwork } from "../../runtime/network/cni";
import { namespacePinner } from "../../runtime/network/namespaces";
import { EventHub } from "../../runtime/pods/events";
import { NameIndex } from "../../runtime/pods/names";
import { BackgroundWork } from "../../runtime/pods/background";
import { LocalRuntimeService } from "../../runtime/pods/service";
import { RecordStore } from "../../runtime/pods/store";
import type { ContainerRecord, RuntimeHandler, SandboxRecord } from "../../runtime/pods/types";
import { KeyedMutex } from "../../runtime/sync/keyed-mutex";
import { OverlaySnapshotter } from "../../runtime/snapshot/overlay";
import type { DaemonConfig } from "../config";
import { startHttpApi } from "./http";
import { criMetrics, imageMetrics, newRegistry, podMetrics } from "./metrics/index";

export interface Daemon {
  socket: string;
  httpAddress: string;
  images: LocalImageService;
  /** Present with --manifests; `berth serve` starts it once the local registry is filled. */
  reconciler?: Reconciler;
  close(): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, log: Logger): Promise<Daemon> {
  await mkdir(config.root, { recursive: true, mode: 0o711 });
  await mkdir(config.state, { recursive: true, mode: 0o711 });

  const metrics = newRegistry();
  const content = new FileContentStore(config.root);
  const snapshotter = new OverlaySnapshotter(config.root);
  const halfMade = await snapshotter.cleanup();
  if (halfMade.length) log.info("removed half-made snapshots left by a crash", { snapshots: halfMade });
  const store = new ImageStore(join(config.root, "images"));
  await store.load();

  const registries = new RegistryResolver({
    registries: config.registries,
    insecureRegistries: config.insecureRegistries,
    dockerConfig: config.images.dockerConfig,
    log,
  });
  const platform = config.platform ? parsePlatform(config.platform) : hostPlatform();
  const images: LocalImageService = new LocalImageService({
    root: config.root,
    content,
    snapshotter,
    store,
    clientFor: (ref, auth) => registries.clientFor(ref, auth),
    platform,
    maxConcurrentDownloads: config.images.maxConcurrentDownloads,
    blobAttempts: config.images.blobAttempts,
    log,
    observer: imageMetrics(metrics, { content, snapshotter }),
    importer: (path, opts) => importImages({ content, snapshotter, platform, log, tmpDir: join(config.root, "tmp") }, path, opts),
    pusher: (image, target, opts) => pushImage({ content, clientFor: (ref, auth) => registries.clientFor(ref, auth) }, image, target, opts),
  });

  const network = new CniNetwork({
    confDir: config.cni.confDir,
    binDirs: config.cni.binDirs,
    defaults: { bridge: config.cni.bridge, subnet: config.cni.subnet, ipamDataDir: join(config.root, "cni", "networks") },
    log,
  });
  const oomScoreAdjFloor = decideOomScoreAdjFloor(config.runtimes.restrictOomScoreAdj);
  if (oomScoreAdjFloor !== undefined) {
    log.info("a container's oom_score_adj is raised to the daemon's own when it asks for less (containerd's restrict_oom_score_adj)", {
      floor: oomScoreAdjFloor,
      why: config.runtimes.restrictOomScoreAdj ? "runtimes.restrictOomScoreAdj" : "no CAP_SYS_RESOURCE: lowering a score fails on this host",
    });
  }
  const handlers: Record<string, RuntimeHandler> = {
    // conmon runs berth's runtime as `node dist/berth.js runtime …`: conmon puts --runtime-args
    // before the command, and no shell is needed in between.
    berth: { name: "berth", path: process.execPath, args: [...process.execArgv.filter((a) => a !== "--enable-source-maps"), process.argv[1]!, "runtime", `--root=${join(config.state, "runtime")}`], root: join(config.state, "runtime"), inProcess: true },
  };
  for (const [name, h] of Object.entries(config.runtimes.handlers)) {
    const root = h.root ?? join(config.state, "runtimes", name);
    handlers[name] = { name, path: h.path, args: [`--root=${root}`], root, inProcess: false };
  }
  const runtime = new LocalRuntimeService({
    config: { root: config.root, state: config.state, cgroupRoot: config.cgroupRoot, handlers, defaultHandler: config.runtimes.default, oomScoreAdjFloor },
    sys: linuxSyscalls,
    sandboxes: new RecordStore<SandboxRecord>(join(config.root, "pods"), "pod sandbox", log),
    containers: new RecordStore<ContainerRecord>(join(config.root, "containers"), "container", log),
    names: new NameIndex(),
    locks: new KeyedMutex(),
    images,
    snapshotter,
    namespaces: namespacePinner(linuxSyscalls, join(config.state, "ns")),
    network,
    monitor: new ConmonMonitor({ conmon: "/usr/bin/conmon", state: config.state, log }),
    events: new EventHub(),
    background: new BackgroundWork(log),
    log,
    onRuntimeCreate: (seconds) => podObserver.runtimeCreate(seconds),
    onUnsafe: (err) => {
      log.error("berth cannot go on safely and exits; restart it (containers keep running under conmon)", { error: err.message });
      // The answer to the request that found it goes out first.
      setTimeout(() => process.exit(70), 100);
    },
  });
  const podObserver = podMetrics(metrics, runtime, config.state, () => runtime.containerProcessCounts());
  const recovered = await runtime.start();
  podObserver.recovered("pod", recovered.pods);
  podObserver.recovered("container", recovered.containers);
  log.info("pods and containers recovered", { ...recovered });

  const health = {
    conditions: async () => (await runtime.status({})).status!.conditions,
  };

  const streaming = new StreamingServer({ addr: config.streaming.addr, runtime, log, idleTimeoutMs: config.streaming.idleTimeoutSeconds * 1000 });
  const streamingUrl = await streaming.start().catch((err: Error) => {
    void runtime.stop();
    throw new Error(`cannot listen on ${config.streaming.addr} for streaming (exec, attach, port-forward): ${err.message}`);
  });
  const cri = await startCriServer({
    socket: config.socket,
    runtime: runtimeServiceHandlers(runtime, streaming),
    image: imageHandlers(images),
    berth: berthHandlers(images),
    log,
    observer: criMetrics(metrics),
  }).catch((err: unknown) => {
    // The runtime's timers would keep a daemon that cannot serve alive.
    void runtime.stop();
    void streaming.close();
    throw err;
  });

  let reconciler: Reconciler | undefined;
  if (config.manifests) {
    const endpoint = config.reconciler.runtimeEndpoint;
    // Loaded only with --manifests: a plain CRI runtime does not carry the reconciler's code.
    const [{ Reconciler }, { localBackend }, { remoteBackend }, { CriClient }, { bytesOf }] = await Promise.all([
      import("../../reconciler/reconciler"),
      import("../../reconciler/backend-local"),
      import("../../cri/remote-runtime"),
      import("../../cri/client"),
      import("../../reconciler/desired/quantity"),
    ]);
    const backend = endpoint ? remoteBackend(new CriClient(endpoint)) : localBackend(runtime, images);
    reconciler = new Reconciler({
      manifests: config.manifests,
      stateDir: join(config.root, "reconciler"),
      backend,
      log,
      resyncMs: config.reconciler.resyncSeconds * 1000,
      concurrency: config.reconciler.concurrency,
      logRotation: {
        maxBytes: bytesOf(config.reconciler.containerLogMaxSize, "reconciler.containerLogMaxSize"),
        maxFiles: config.reconciler.containerLogMaxFiles,
        intervalMs: config.reconciler.containerLogMonitorSeconds * 1000,
      },
    });
    (await import("./metrics/reconciler")).reconcilerMetrics(metrics, reconciler);
  }

  let http: Awaited<ReturnType<typeof startHttpApi>>;
  try {
    http = await startHttpApi({
      addr: config.metricsAddr,
      metrics,
      unhealthy: async () => {
        // What kubelet needs first: the socket answers.
        const socketError = await new Promise<string | undefined>((resolve) => {
          const c = connect(config.socket);
          c.setTimeout(2000, () => c.destroy(new Error("no answer within 2 s")));
          c.once("connect", () => {
            c.destroy();
            resolve(undefined);
          });
          c.once("error", (err) => resolve(err.message));
        });
        if (socketError) return `CRI socket ${config.socket} does not answer: ${socketError}`;
        const bad = (await health.conditions()).find((c) => c.type === "RuntimeReady" && !c.status);
        return bad ? `${bad.type}: ${bad.reason} ${bad.message}` : undefined;
      },
      routes: {
        "/api/v1/version": async () => ({ version: (await runtime.version()).runtimeVersion }),
        "/api/v1/objects": async () => ({ manifests: config.manifests ?? null, revision: reconciler?.revision ?? null, lastSyncAt: reconciler?.lastSyncAt ?? null, objects: reconciler?.status() ?? [] }),
        "/api/v1/events": async () => ({ events: reconciler?.book.recentEvents() ?? [] }),
      },
      prefixRoutes: {
        "/api/v1/objects/": async (rest) => {
          const [kind, namespace, name] = rest.split("/");
          return reconciler?.status().find((s) => s.kind.toLowerCase() === kind?.toLowerCase() && s.namespace === namespace && s.name === name);
        },
      },
    });
  } catch (err) {
    await Promise.all([cri.close(), streaming.close()]);
    throw new Error(`cannot listen on ${config.metricsAddr} for metrics: ${(err as Error).message}`);
  }
  // The CLI finds the status API and the daemon's root next to the socket (berth status, apply).
  await writeFileAtomic(join(dirname(config.socket), "daemon.json"), `${JSON.stringify({ http: http.address, root: config.root, pid: process.pid })}\n`).catch(() => {});
  log.info("berth serving", { socket: config.socket, http: http.address, root: config.root, state: config.state, manifests: config.manifests ?? null, streaming: streamingUrl });

  return {
    socket: config.socket,
    httpAddress: http.address,
    images,
    reconciler,
    close: async () => {
      await reconciler?.stop();
      await Promise.all([cri.close(), http.close(), streaming.close()]);
      await runtime.stop();
    },
  };
}
