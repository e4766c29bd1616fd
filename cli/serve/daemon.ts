// Wires berth's daemon together: stores on disk, the image service, the CRI gRPC server and the
// HTTP listener. Each part is built here and handed to the next; none reaches for a global.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { collectDefaultMetrics, Registry } from "prom-client";
import { type RuntimeHealth, runtimeStatusHandlers } from "../../cri/runtime-status";
import { berthHandlers } from "../../cri/berth-service";
import { imageHandlers } from "../../cri/images";
import { startCriServer } from "../../cri/server";
import { FileContentStore } from "../../runtime/image/content/store";
import { importImages } from "../../runtime/image/import";
import { hostPlatform, parsePlatform } from "../../runtime/image/platform";
import { pushImage } from "../../runtime/image/push";
import { RegistryResolver } from "../../runtime/image/registry/resolver";
import { LocalImageService } from "../../runtime/image/service";
import { ImageStore } from "../../runtime/image/store";
import type { Logger } from "../../runtime/log";
import { OverlaySnapshotter } from "../../runtime/snapshot/overlay";
import type { DaemonConfig } from "../config";
import { startHttpApi } from "./http";

export interface Daemon {
  socket: string;
  httpAddress: string;
  images: LocalImageService;
  close(): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, log: Logger): Promise<Daemon> {
  await mkdir(config.root, { recursive: true, mode: 0o711 });
  await mkdir(config.state, { recursive: true, mode: 0o711 });

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
    importer: (path, opts) => importImages({ content, snapshotter, platform, log, tmpDir: join(config.root, "tmp") }, path, opts),
    pusher: (image, target, opts) => pushImage({ content, clientFor: (ref, auth) => registries.clientFor(ref, auth) }, image, target, opts),
  });

  const health: RuntimeHealth = {
    conditions: async () => [
      { type: "RuntimeReady", status: true, reason: "", message: "" },
      // Pod networking (CNI) arrives with the CRI RuntimeService; until then pods cannot be networked.
      { type: "NetworkReady", status: false, reason: "NetworkPluginNotReady", message: "berth: pod networking is not built yet" },
    ],
    info: () => ({ root: config.root, state: config.state, platform, insecureRegistries: config.insecureRegistries }),
  };

  const cri = await startCriServer({
    socket: config.socket,
    runtime: { unary: runtimeStatusHandlers(health) },
    image: imageHandlers(images),
    berth: berthHandlers(images),
    log,
  });

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics, prefix: "berth_" });
  let http: Awaited<ReturnType<typeof startHttpApi>>;
  try {
    http = await startHttpApi({
      addr: config.metricsAddr,
      metrics,
      unhealthy: async () => {
        const bad = (await health.conditions()).find((c) => c.type === "RuntimeReady" && !c.status);
        return bad ? `${bad.type}: ${bad.reason} ${bad.message}` : undefined;
      },
      routes: {
        "/api/v1/version": async () => ({ version: (await runtimeStatusHandlers(health).Version()).runtimeVersion }),
      },
    });
  } catch (err) {
    await cri.close();
    throw new Error(`cannot listen on ${config.metricsAddr} for metrics: ${(err as Error).message}`);
  }
  log.info("berth serving", { socket: config.socket, http: http.address, root: config.root, state: config.state });

  return {
    socket: config.socket,
    httpAddress: http.address,
    images,
    close: async () => {
      await Promise.all([cri.close(), http.close()]);
    },
  };
}
