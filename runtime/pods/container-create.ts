// CreateContainer: the image's snapshot gets a writable layer, mounted as the bundle's rootfs;
// the OCI spec is built from the image config and the CRI config as containerd builds it; conmon
// runs the runtime's `create`. The record is written first in phase "creating", so a crash at any
// step leaves something recovery recognises as half-made; a failure undoes what was done.
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors";
import { buildContainerSpec, stopSignalOf } from "../oci/spec-from-cri";
import { writeJsonAtomic } from "../store/atomic";
import { removeContainerLocked } from "./container-stop";
import { stepTimes } from "./step-times";
import { containerEvent } from "./container-status";
import { type PodContext, handlerFor } from "./context";
import { containerName } from "./names";
import { mountRootfs } from "./rootfs-mount";
import { nowNanos } from "./time";
import type { ContainerRecord } from "./types";

function completeConfig(c: CriRequest<cri.ContainerConfig>): cri.ContainerConfig {
  return {
    metadata: { name: c.metadata?.name ?? "", attempt: c.metadata?.attempt ?? 0 },
    image: (c.image as cri.ImageSpec) ?? null,
    command: (c.command ?? []) as string[],
    args: (c.args ?? []) as string[],
    workingDir: c.workingDir ?? "",
    envs: (c.envs ?? []) as cri.KeyValue[],
    mounts: (c.mounts ?? []) as cri.Mount[],
    devices: (c.devices ?? []) as cri.Device[],
    labels: (c.labels ?? {}) as Record<string, string>,
    annotations: (c.annotations ?? {}) as Record<string, string>,
    logPath: c.logPath ?? "",
    stdin: c.stdin ?? false,
    stdinOnce: c.stdinOnce ?? false,
    tty: c.tty ?? false,
    linux: (c.linux as cri.LinuxContainerConfig) ?? null,
    windows: null,
    CDIDevices: [],
    stopSignal: c.stopSignal ?? "RUNTIME_DEFAULT",
  };
}

export async function createContainer(ctx: PodContext, req: CriRequest<cri.CreateContainerRequest>): Promise<cri.CreateContainerResponse> {
  if (!req.podSandboxId) throw new InvalidArgumentError("CreateContainer: pod_sandbox_id is required");
  if (!req.config?.metadata?.name) throw new InvalidArgumentError("CreateContainer: config.metadata.name is required");
  const imageName = req.config.image?.image?.trim();
  if (!imageName) throw new InvalidArgumentError("CreateContainer: config.image.image is required");
  const pod = ctx.sandboxes.resolve(req.podSandboxId);
  if (!pod || pod.phase === "creating") throw new NotFoundError(`CreateContainer: pod sandbox "${req.podSandboxId}" not found`);
  const config = completeConfig(req.config);
  // containerd's and CRI-O's rule: the pod must have been made privileged (kubelet does so when
  // any of its containers is); the pod's own recorded config decides, not the request's copy.
  if (config.linux?.securityContext?.privileged && !pod.config.linux?.securityContext?.privileged) {
    throw new InvalidArgumentError(`CreateContainer: container "${config.metadata!.name}" is privileged but its pod sandbox is not (linux.security_context.privileged of RunPodSandbox); no privileged container is allowed in it`);
  }

  const id = randomBytes(32).toString("hex");
  const name = containerName(config.metadata!, pod.config.metadata!);
  const log = ctx.log.with({ pod: `${pod.config.metadata?.namespace}/${pod.config.metadata?.name}`, container: config.metadata!.name, id: id.slice(0, 12) });

  // Under the pod's lock: a concurrent StopPodSandbox cannot slip between the check and the record.
  const rec = await ctx.locks.run(pod.id, async () => {
    if (pod.phase !== "ready") {
      throw new FailedPreconditionError(`CreateContainer: pod sandbox ${pod.id.slice(0, 12)} (${pod.name}) is not ready (it was stopped); create a new pod`);
    }
    const image = await ctx.images.get(imageName);
    if (!image) throw new NotFoundError(`CreateContainer: image "${imageName}" is not present; pull it first (PullImage)`);
    ctx.names.reserve(name, id, "container");
    const dir = join(ctx.config.state, "containers", id);
    let logPath = "";
    if (config.logPath) {
      logPath = isAbsolute(config.logPath) ? config.logPath : pod.config.logDirectory ? join(pod.config.logDirectory, config.logPath) : "";
      if (!logPath) throw new InvalidArgumentError(`CreateContainer: log_path "${config.logPath}" is relative but the pod has no log_directory`);
    } else {
      // No log path from the caller (crictl, berth run-pod): conmon needs one, and `berth logs` reads it.
      logPath = join(dir, "container.log");
    }
    const r: ContainerRecord = {
      id,
      name,
      sandboxId: pod.id,
      config,
      runtimeHandler: pod.runtimeHandler,
      phase: "creating",
      image: { id: image.id, name: image.repoTags[0] ?? imageName, ref: image.repoDigests[0] ?? image.id, user: image.runConfig.User },
      createdAt: nowNanos(),
      logPath,
      bundle: join(dir, "bundle"),
      rootfs: join(dir, "bundle", "rootfs"),
      snapshotKey: `container-${id}`,
      cgroupsPath: `${pod.cgroupParent}/${id}`,
      stopSignal: stopSignalOf(config, image.runConfig),
      mounts: config.mounts,
      resources: config.linux?.resources ?? undefined,
    };
    await ctx.containers.put(r);
    return { r, image };
  });

  const handler = handlerFor(ctx, rec.r.runtimeHandler);
  const c = rec.r;
  const { step, steps } = stepTimes();
  try {
    await ctx.locks.run(id, async () => {
      const mounts = await ctx.snapshotter.prepare(c.snapshotKey, rec.image.chainIds.at(-1), { "berth.io/container": id });
      mountRootfs(ctx.sys, mounts, c.rootfs);
      step("rootfsMs");
      if (c.logPath) await mkdir(dirname(c.logPath), { recursive: true, mode: 0o755 });
      const spec = buildContainerSpec({
        containerId: id,
        config: req.config!,
        sandboxConfig: pod.config,
        image: { id: rec.image.id, name: c.image.name, config: rec.image.runConfig },
        rootfs: c.rootfs,
        sandbox: {
          id: pod.id,
          namespaces: { network: pod.namespaces.net, ipc: pod.namespaces.ipc, uts: pod.namespaces.uts, pid: pod.pidHolder?.ns },
          hostname: pod.hostname,
          files: { resolvConf: pod.files.resolvConf, hosts: pod.files.hosts, hostname: pod.files.hostname, shm: pod.files.shm },
        },
        cgroupsPath: c.cgroupsPath,
        oomScoreAdjFloor: ctx.config.oomScoreAdjFloor,
      });
      await writeJsonAtomic(join(c.bundle, "config.json"), spec);
      step("specMs");
      const started = await ctx.monitor.create(c, handler);
      step("runtimeCreateMs");
      c.pid = started.pid;
      c.conmonPid = started.conmonPid;
      c.phase = "created";
      await ctx.containers.put(c);
    });
  } catch (err) {
    log.warn("container creation failed; undoing", { error: (err as Error).message });
    await ctx.locks.run(id, () => removeContainerLocked(ctx, id)).catch((e: unknown) => log.error("undoing a failed container left something behind", { error: (e as Error).message }));
    throw err;
  }
  log.info("container created", { image: c.image.name, pid: c.pid, ...steps });
  if (steps.runtimeCreateMs !== undefined) ctx.onRuntimeCreate?.(steps.runtimeCreateMs / 1000);
  ctx.events.emit(containerEvent(ctx, c, "CONTAINER_CREATED_EVENT"));
  return { containerId: id };
}
