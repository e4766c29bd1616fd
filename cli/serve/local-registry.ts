// `berth serve --local-registry`: the main job with no internet. Starts Debian's docker-registry
// on 127.0.0.1 with its storage under berth's root, makes it docker.io's mirror for this daemon,
// and fills it with a busybox image built from this machine's busybox-static.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { busyboxRootfs, writeImageToLayout } from "../../runtime/image/build";
import type { ImageService } from "../../runtime/image/types";
import type { Logger } from "../../runtime/log";
import type { DaemonConfig } from "../config";

export interface DockerRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs `docker-registry serve` on 127.0.0.1 with filesystem storage in `storage`. `extra` is
 * merged into its config (auth sections for tests). Stopped by PID.
 */
export async function startDockerRegistry(opts: { storage: string; configDir: string; extra?: Record<string, unknown>; port?: number }): Promise<DockerRegistry> {
  await mkdir(opts.storage, { recursive: true });
  await mkdir(opts.configDir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const host = `127.0.0.1:${opts.port ?? (await freePort())}`;
    const config = {
      version: 0.1,
      log: { level: "error", accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: opts.storage }, delete: { enabled: true } },
      http: { addr: host },
      ...opts.extra,
    };
    const file = join(opts.configDir, "registry.yml");
    // JSON is YAML.
    await writeFile(file, JSON.stringify(config));
    let output = "";
    const child: ChildProcess = spawn("docker-registry", ["serve", file], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
    };
    for (let i = 0; i < 500; i++) {
      const failed = await Promise.race([spawnError, sleep(20).then(() => undefined)]);
      if (failed) throw new Error(`cannot start docker-registry (apt-get install docker-registry): ${failed.message}`);
      if (child.exitCode !== null) break;
      const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
      if (res && (res.status === 200 || res.status === 401)) return { host, pid: child.pid!, stop };
    }
    await stop();
    if (attempt >= 3 || opts.port || !/address already in use/.test(output)) throw new Error(`docker-registry did not come up on ${host}: ${output.trim().slice(-500)}`);
  }
}

export async function startLocalRegistry(config: DaemonConfig, log: Logger): Promise<DockerRegistry & { fill(images: ImageService): Promise<void> }> {
  const base = join(config.root, "local-registry");
  const reg = await startDockerRegistry({ storage: join(base, "data"), configDir: base });
  // Image names in manifests stay as users write them (busybox:latest); this daemon finds them here.
  config.registries.push({ host: "docker.io", mirrors: [{ url: `http://${reg.host}` }], skipSelf: true });
  config.insecureRegistries.push(reg.host);
  log.info("local registry started", { registry: reg.host, storage: join(base, "data"), mirrorOf: "docker.io" });
  return {
    ...reg,
    async fill(images: ImageService) {
      const tmp = await mkdtemp(join(config.root, "tmp-local-registry-"));
      try {
        const layout = join(tmp, "layout");
        await writeImageToLayout(layout, { layers: [{ entries: busyboxRootfs() }], config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"] } }, { tag: "latest" });
        const name = "berth.local/seed/busybox:latest";
        await images.importArchive(layout, { name });
        for (const target of [`${reg.host}/library/busybox:latest`, `${reg.host}/library/busybox:1.36`]) await images.push(name, target);
        // The seed was only the way in: pulls go through the registry, as they would in production.
        await images.remove(name);
        log.info("local registry filled", { registry: reg.host, images: ["busybox:latest", "busybox:1.36"] });
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  };
}
