// The CRI RuntimeService of a real `berth serve`: pods without a pause image, containers under
// conmon with berth's own runtime, CNI networking on a bridge of the test's own, logs in the
// CRI format, limits that kill, and a daemon that survives its own SIGKILL. Driven through the
// suite's CRI client, as kubelet and crictl drive it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type * as cri from "../../runtime/api/cri-v1";
import { Code } from "../../runtime/errors";
import { hasSysResource } from "../../runtime/oci/oom-score";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { freePort, startRegistry } from "../support/registry";
import { buildTestImages, pushLayout, type TestImages } from "../support/test-images";
import { containerConfig, forceClean, mountsBelow, podConfig, readCriLog, removeAllPods, runContainer, runPod, status, waitForState } from "../support/pods";
import { cgroupDirsBelowSelf } from "../support/runtime-pair";
import { hostNetworkSnapshot, type HostNetworkSnapshot, restoreHostNetwork } from "../support/host-network";

const BRIDGE = `bp${process.pid % 100000}`;

/** Directories below `root` (a few levels) whose name is `name`. */
function dirsNamed(root: string, name: string, depth = 3): string[] {
  if (depth === 0 || !existsSync(root)) return [];
  const subs = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory());
  return subs.flatMap((d) => (d.name === name ? [join(root, d.name)] : dirsNamed(join(root, d.name), name, depth - 1)));
}
const SUBNET = `10.89.${process.pid % 250}.0/24`;
const CGROUP_ROOT = `berth-test-pods-${process.pid}`;

describe("CRI RuntimeService: pods and containers", () => {
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let daemon: TestDaemon;
  let images: TestImages;
  let work: string;
  let busybox: string;
  let net: HostNetworkSnapshot;
  const logs = () => join(work, "logs");

  before(async () => {
    net = hostNetworkSnapshot();
    work = await mkdtemp(join(tmpdir(), "berth-cri-pods-"));
    registry = await startRegistry();
    images = await buildTestImages(join(work, "layouts"));
    await pushLayout(images.busybox.layout, images.busybox.tag, registry.host, images.busybox.repo);
    busybox = `${registry.host}/${images.busybox.repo}:${images.busybox.tag}`;
    daemon = await startDaemon({
      dir: join(work, "daemon"),
      insecureRegistries: [registry.host],
      config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: SUBNET } },
    });
    await daemon.client.imageCall("PullImage", { image: { image: busybox } });
  });

  after(async () => {
    try {
      if (daemon) await removeAllPods(daemon.client).catch(() => {});
      await daemon?.stop();
    } finally {
      const leftovers = work ? await forceClean(work, cgroupDirsBelowSelf(CGROUP_ROOT)) : [];
      restoreHostNetwork(net, BRIDGE);
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
      assert.deepEqual(leftovers, [], "the daemon removed everything itself");
    }
  });

  const pod = (name: string, extra: Parameters<typeof podConfig>[1] = {}) => podConfig(name, { logDirectory: join(logs(), name), ...extra });

  test("RunPodSandbox gives a ready pod with an IP on berth's bridge; its containers share localhost and IPC", async () => {
    const cfg = pod("pair");
    const podId = await runPod(daemon.client, cfg);
    const st = (await daemon.client.runtimeCall<cri.PodSandboxStatusResponse>("PodSandboxStatus", { podSandboxId: podId })).status!;
    assert.equal(st.state, "SANDBOX_READY");
    assert.match(st.network!.ip, new RegExp(`^10\\.89\\.${process.pid % 250}\\.\\d+$`));
    const server = await runContainer(daemon.client, podId, cfg, containerConfig("server", busybox, ["sh", "-c", "echo hello-from-server > /tmp/index.html && echo shm > /dev/shm/marker && httpd -f -p 8080 -h /tmp"]));
    await waitForState(daemon.client, server, "CONTAINER_RUNNING");
    const client = await runContainer(daemon.client, podId, cfg, containerConfig("client", busybox, ["sleep", "600"]));
    let body = "";
    for (let i = 0; i < 50 && !body.includes("hello"); i++) {
      const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: client, cmd: ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html"], timeout: "5" });
      body = Buffer.from(r.stdout).toString();
      if (!body) await sleep(100);
    }
    assert.equal(body.trim(), "hello-from-server", "the client reaches the server on localhost");
    const ipc = async (id: string) => Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["readlink", "/proc/self/ns/ipc"], timeout: "5" })).stdout).toString();
    assert.equal(await ipc(server), await ipc(client), "one IPC namespace");
    const shm = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: client, cmd: ["cat", "/dev/shm/marker"], timeout: "5" });
    assert.equal(Buffer.from(shm.stdout).toString().trim(), "shm", "one /dev/shm");
    const host = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: client, cmd: ["hostname"], timeout: "5" });
    assert.equal(Buffer.from(host.stdout).toString().trim(), "pair");
  });

  test("a hostPort is reached from the host on 127.0.0.1", async () => {
    const hostPort = await freePort();
    const cfg = pod("web", { portMappings: [{ protocol: "TCP", containerPort: 80, hostPort, hostIp: "" }] });
    const podId = await runPod(daemon.client, cfg);
    await runContainer(daemon.client, podId, cfg, containerConfig("httpd", busybox, ["sh", "-c", "echo through-hostport > /tmp/index.html && httpd -f -p 80 -h /tmp"]));
    let text = "";
    for (let i = 0; i < 50 && !text; i++) {
      text = await fetch(`http://127.0.0.1:${hostPort}/index.html`).then((r) => r.text()).catch(() => "");
      if (!text) await sleep(100);
    }
    assert.equal(text.trim(), "through-hostport");
    await daemon.client.runtimeCall("StopPodSandbox", { podSandboxId: podId });
    const after = await fetch(`http://127.0.0.1:${hostPort}/index.html`, { signal: AbortSignal.timeout(1000) }).then((r) => r.text()).catch(() => "refused");
    assert.equal(after, "refused", "the port mapping goes with the pod's network");
    if (!net.natChains.has("CNI-HOSTPORT-DNAT")) {
      const nat = execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" });
      assert.ok(!nat.includes("CNI-HOSTPORT"), "portmap's chains go with the last hostPort");
    }
  });

  test("stdout and stderr land in the CRI log file, partial lines tagged P", async () => {
    const cfg = pod("logger");
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("logger", busybox, ["sh", "-c", "echo out-1; echo err-1 >&2; printf no-newline"]));
    const st = await waitForState(daemon.client, id, "CONTAINER_EXITED");
    assert.equal(st.exitCode, 0);
    assert.equal(st.reason, "Completed");
    assert.equal(st.logPath, join(logs(), "logger", "logger.log"));
    const lines = readCriLog(st.logPath);
    assert.deepEqual(
      lines.filter((l) => l.stream === "stdout"),
      [
        { stream: "stdout", tag: "F", content: "out-1" },
        { stream: "stdout", tag: "P", content: "no-newline" },
      ],
    );
    assert.deepEqual(lines.filter((l) => l.stream === "stderr"), [{ stream: "stderr", tag: "F", content: "err-1" }]);
  });

  test("exit codes and reasons: 3 is Error, a memory limit that kills is OOMKilled", async () => {
    const cfg = pod("exits");
    const podId = await runPod(daemon.client, cfg);
    const three = await runContainer(daemon.client, podId, cfg, containerConfig("three", busybox, ["sh", "-c", "exit 3"]));
    const st3 = await waitForState(daemon.client, three, "CONTAINER_EXITED");
    assert.equal(st3.exitCode, 3);
    assert.equal(st3.reason, "Error");
    const oom = await runContainer(
      daemon.client,
      podId,
      cfg,
      containerConfig("oom", busybox, ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1"], { linux: { resources: { memoryLimitInBytes: String(16 * 1024 * 1024) } } }),
    );
    const stOom = await waitForState(daemon.client, oom, "CONTAINER_EXITED");
    assert.equal(stOom.reason, "OOMKilled");
    assert.equal(stOom.exitCode, 137);
  });

  // conmon records the exit; one that is killed (OOM, an administrator) records nothing. The
  // container must not stay "running" for ever, nor StopContainer fail on it, as it once did
  // ("did not exit within 10 s of SIGKILL").
  test("a container whose conmon was killed still stops, and its exit is recorded as lost; one that exits on its own is noticed too", async () => {
    const cfg = pod("monitor-killed");
    const podId = await runPod(daemon.client, cfg);
    const conmonOf = async (id: string) => (JSON.parse((await daemon.client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: id, verbose: true })).info.info!) as { conmonPid: number }).conmonPid;
    const stopped = await runContainer(daemon.client, podId, cfg, containerConfig("stopped", busybox, ["sleep", "600"]));
    const exits = await runContainer(daemon.client, podId, cfg, containerConfig("exits", busybox, ["sh", "-c", "sleep 1; exit 3"]));
    for (const id of [stopped, exits]) {
      await waitForState(daemon.client, id, "CONTAINER_RUNNING");
      process.kill(await conmonOf(id), "SIGKILL");
    }
    await daemon.client.runtimeCall("StopContainer", { containerId: stopped, timeout: "1" });
    for (const id of [stopped, exits]) {
      const st = await waitForState(daemon.client, id, "CONTAINER_EXITED");
      assert.equal(st.exitCode, 255);
      assert.equal(st.reason, "Error");
      assert.match(st.message, /its monitor \(conmon, pid \d+\) died before the container exited: the exit status is unknown/);
    }
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  test("StopContainer kills a process that ignores SIGTERM once the timeout passes", async () => {
    const cfg = pod("stubborn");
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("stubborn", busybox, ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    await daemon.client.runtimeCall("StopContainer", { containerId: id, timeout: "1" });
    const st = await status(daemon.client, id);
    assert.equal(st.state, "CONTAINER_EXITED");
    assert.equal(st.exitCode, 137, "SIGKILL ended it");
  });

  test("ExecSync returns stdout, stderr and the exit code", async () => {
    const cfg = pod("exec");
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("sleeper", busybox, ["sleep", "600"]));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["sh", "-c", "echo to-out; echo to-err >&2; exit 5"], timeout: "10" });
    assert.equal(Buffer.from(r.stdout).toString(), "to-out\n");
    assert.equal(Buffer.from(r.stderr).toString(), "to-err\n");
    assert.equal(r.exitCode, 5);
  });

  // kubelet gives a Guaranteed pod's containers -997. Where the host cannot lower a score (no
  // CAP_SYS_RESOURCE, as here), the daemon raises it to its own (containerd's
  // restrict_oom_score_adj); the runtime's warning would otherwise open the container's log and
  // follow every exec's stderr.
  async function runGuaranteed(client: typeof daemon.client, cfg: ReturnType<typeof pod>): Promise<{ id: string; ownScore: string }> {
    const podId = await runPod(client, cfg);
    const id = await runContainer(client, podId, cfg, containerConfig("app", busybox, ["sh", "-c", "cat /proc/self/oom_score_adj; exec sleep 600"], { linux: { resources: { oomScoreAdj: "-997" } } }));
    await waitForState(client, id, "CONTAINER_RUNNING");
    const r = await client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["sh", "-c", "cat /proc/self/oom_score_adj; echo to-err >&2"], timeout: "10" });
    assert.equal(Buffer.from(r.stderr).toString(), "to-err\n", "the exec's stderr is the command's own");
    const ownScore = Buffer.from(r.stdout).toString().trim();
    const st = await status(client, id);
    let lines = readCriLog(st.logPath);
    for (let i = 0; i < 50 && lines.length === 0; i++) {
      await sleep(100);
      lines = readCriLog(st.logPath);
    }
    assert.deepEqual(lines, [{ stream: "stdout", tag: "F", content: ownScore }], "the container's log holds its own output alone");
    return { id, ownScore };
  }
  const canLowerScores = () => hasSysResource(readFileSync("/proc/self/status", "utf8"));
  const daemonScore = () => readFileSync("/proc/self/oom_score_adj", "utf8").trim();

  test("a Guaranteed pod's oom_score_adj -997 is applied where the host allows, else raised to the daemon's own; the log and an exec's stderr hold only the program's output", async () => {
    const { id, ownScore } = await runGuaranteed(daemon.client, pod("guaranteed"));
    const expected = canLowerScores() ? "-997" : daemonScore();
    assert.equal(ownScore, expected);
    const verbose = await daemon.client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: id, verbose: true });
    const spec = (JSON.parse(verbose.info.info!) as { runtimeSpec: { process: { oomScoreAdj?: number } } }).runtimeSpec;
    assert.equal(String(spec.process.oomScoreAdj ?? 0), expected, "the runtime is asked for what this host can apply");
  });

  test("with restrictOomScoreAdj false, the score the host refuses is the runtime's warning in the daemon's log, not in the container's output", async () => {
    const other = await startDaemon({
      dir: join(work, "daemon-unrestricted"),
      insecureRegistries: [registry.host],
      config: { cgroupRoot: CGROUP_ROOT, runtimes: { restrictOomScoreAdj: false } },
    });
    try {
      await other.client.imageCall("PullImage", { image: { image: busybox } });
      const hostNet = pod("unrestricted", { linux: { securityContext: { namespaceOptions: { network: "NODE" } } } });
      const { id, ownScore } = await runGuaranteed(other.client, hostNet);
      if (canLowerScores()) return assert.equal(ownScore, "-997");
      assert.equal(ownScore, daemonScore(), "not applied: the process keeps the score it inherited");
      const warnings = other
        .logs()
        .split("\n")
        .filter((l) => l.includes("OCI runtime:") && l.includes("oom_score_adj -997 not applied"));
      assert.equal(warnings.length, 2, `one warning for the create, one for the exec:\n${warnings.join("\n")}`);
      for (const w of warnings) assert.equal((JSON.parse(w) as { container?: string }).container, id.slice(0, 12));
    } finally {
      await removeAllPods(other.client).catch(() => {});
      await other.stop();
    }
  });

  test("ContainerStats move when the container works", async () => {
    const cfg = pod("busy");
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("busy", busybox, ["sh", "-c", "while true; do :; done"]));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    const cpu = async () => BigInt((await daemon.client.runtimeCall<cri.ContainerStatsResponse>("ContainerStats", { containerId: id })).stats!.cpu!.usageCoreNanoSeconds!.value);
    const first = await cpu();
    await sleep(300);
    const second = await cpu();
    assert.ok(second > first, `cpu usage grows (${first} → ${second})`);
    const stats = (await daemon.client.runtimeCall<cri.ContainerStatsResponse>("ContainerStats", { containerId: id })).stats!;
    assert.ok(BigInt(stats.memory!.workingSetBytes!.value) > 0n, "a working set");
    const podStats = (await daemon.client.runtimeCall<cri.PodSandboxStatsResponse>("PodSandboxStats", { podSandboxId: podId })).stats!;
    assert.ok(BigInt(podStats.linux!.cpu!.usageCoreNanoSeconds!.value) >= second, "the pod's cgroup holds its container's usage");
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  test("bad requests get the right gRPC codes and the daemon lives on", async () => {
    const call = (m: string, r: object) => daemon.client.runtimeCall(m, r);
    const code = (c: number) => (e: { code: number }) => e.code === c;
    await assert.rejects(call("RunPodSandbox", {}), code(Code.INVALID_ARGUMENT));
    await assert.rejects(call("CreateContainer", { podSandboxId: "" }), code(Code.INVALID_ARGUMENT));
    await assert.rejects(call("ContainerStatus", { containerId: "f".repeat(64) }), code(Code.NOT_FOUND));
    await assert.rejects(call("PodSandboxStatus", { podSandboxId: "f".repeat(64) }), code(Code.NOT_FOUND));
    const cfg = pod("dup");
    const podId = await runPod(daemon.client, cfg);
    await assert.rejects(call("RunPodSandbox", { config: cfg }), code(Code.ALREADY_EXISTS));
    const c = containerConfig("one", busybox, ["sleep", "600"]);
    await call("CreateContainer", { podSandboxId: podId, config: c, sandboxConfig: cfg });
    await assert.rejects(call("CreateContainer", { podSandboxId: podId, config: c, sandboxConfig: cfg }), code(Code.ALREADY_EXISTS));
    const badMount = containerConfig("badmount", busybox, ["true"], { mounts: [{ containerPath: "/data", hostPath: "relative/path" }] });
    await assert.rejects(call("CreateContainer", { podSandboxId: podId, config: badMount, sandboxConfig: cfg }), code(Code.INVALID_ARGUMENT));
    await assert.rejects(call("CreateContainer", { podSandboxId: podId, config: containerConfig("noimage", `${registry.host}/not/pulled:v1`, ["true"]), sandboxConfig: cfg }), code(Code.NOT_FOUND));
    await call("StopPodSandbox", { podSandboxId: podId });
    await call("StopPodSandbox", { podSandboxId: podId });
    await assert.rejects(call("CreateContainer", { podSandboxId: podId, config: containerConfig("late", busybox, ["true"]), sandboxConfig: cfg }), code(Code.FAILED_PRECONDITION));
    await call("RemovePodSandbox", { podSandboxId: podId });
    await call("RemovePodSandbox", { podSandboxId: podId });
    const v = await daemon.client.runtimeCall<cri.VersionResponse>("Version", {});
    assert.equal(v.runtimeName, "berth");
  });

  // Each of these once failed half-way through (a port mapping was checked by the network set-up,
  // after the namespaces were pinned, and its undoing failed on the same check), or not at all (a
  // sysctl outside the pod's namespaces would have been set on the host by its containers).
  test("a pod config that cannot be made is refused with INVALID_ARGUMENT before anything is made", async () => {
    const before = mountsBelow(daemon.state);
    const refused: Array<[string, Parameters<typeof pod>[1], RegExp]> = [
      ["port", { portMappings: [{ hostPort: 70000, containerPort: 80 }] }, /port mapping 70000 -> 80\/tcp is not valid/],
      ["protocol", { portMappings: [{ hostPort: 18097, containerPort: 80, protocol: 7 as unknown as cri.Protocol }] }, /is not valid: ports are 1-65535, protocols tcp, udp or sctp/],
      ["host-ip", { portMappings: [{ hostPort: 18096, containerPort: 80, hostIp: "not-an-ip" }] }, /not-an-ip:18096 -> 80\/tcp is not valid/],
      ["hostname", { hostname: "h".repeat(65) }, /65 characters; at most 64/],
      ["log-dir", { logDirectory: "relative/dir" }, /log_directory "relative\/dir" must be an absolute path/],
      ["dns", { dnsConfig: { servers: ["10.0.0.1\nnameserver 6.6.6.6"] } }, /dns_config\.servers "10\.0\.0\.1\\nnameserver 6\.6\.6\.6" is not valid/],
      ["host-sysctl", { linux: { sysctls: { "kernel.printk_ratelimit_burst": "11" } } }, /sysctl "kernel\.printk_ratelimit_burst" is not in a separate kernel namespace/],
      ["net-sysctl", { linux: { sysctls: { "net.ipv4.ip_forward": "1" }, securityContext: { namespaceOptions: { network: "NODE" } } } }, /not allowed in the host's network namespace/],
      ["ipc-sysctl", { linux: { sysctls: { "kernel.shmmax": "100000" }, securityContext: { namespaceOptions: { ipc: "NODE" } } } }, /not allowed in the host's IPC namespace/],
    ];
    for (const [name, extra, message] of refused) {
      await assert.rejects(daemon.client.runtimeCall("RunPodSandbox", { config: pod(`refused-${name}`, extra) }), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && message.test(e.message), name);
    }
    const { items } = await daemon.client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
    assert.deepEqual(items.filter((p) => p.metadata?.name.startsWith("refused-")), [], "no pod listed");
    assert.deepEqual(mountsBelow(daemon.state), before, "no pin or /dev/shm mount left");
    // The namespaced ones pass.
    const ok = pod("sysctls-ok", { linux: { sysctls: { "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1" } } });
    const okId = await runPod(daemon.client, ok);
    const c = await runContainer(daemon.client, okId, ok, containerConfig("c", busybox, ["sleep", "600"]));
    await waitForState(daemon.client, c, "CONTAINER_RUNNING");
    const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: c, cmd: ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/kernel/shm_rmid_forced"], timeout: "5" });
    assert.equal(Buffer.from(r.stdout).toString(), "80\n1\n");
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: okId });
  });

  test("a daemon SIGKILL loses nothing: 3 running pods come back, an exit during the downtime is recorded", async () => {
    const ids: Array<{ pod: string; ctr: string }> = [];
    for (const name of ["keep-a", "keep-b", "keep-c"]) {
      const cfg = pod(name);
      const podId = await runPod(daemon.client, cfg);
      ids.push({ pod: podId, ctr: await runContainer(daemon.client, podId, cfg, containerConfig(name, busybox, ["sleep", "600"])) });
    }
    const cfg = pod("ends-while-down");
    const endsPod = await runPod(daemon.client, cfg);
    const ends = await runContainer(daemon.client, endsPod, cfg, containerConfig("ends", busybox, ["sh", "-c", "sleep 2; exit 7"]));
    await waitForState(daemon.client, ends, "CONTAINER_RUNNING");
    await daemon.kill();
    await sleep(3000);
    await daemon.restart();
    for (const { pod: p, ctr } of ids) {
      const ps = (await daemon.client.runtimeCall<cri.PodSandboxStatusResponse>("PodSandboxStatus", { podSandboxId: p })).status!;
      assert.equal(ps.state, "SANDBOX_READY");
      assert.equal((await status(daemon.client, ctr)).state, "CONTAINER_RUNNING");
      const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: ctr, cmd: ["true"], timeout: "5" });
      assert.equal(r.exitCode, 0, "still reachable after the restart");
    }
    const st = await status(daemon.client, ends);
    assert.equal(st.state, "CONTAINER_EXITED");
    assert.equal(st.exitCode, 7);
    for (const { pod: p } of ids) await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: p });
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: endsPod });
    const gone = [...ids.flatMap((x) => [x.pod, x.ctr]), endsPod, ends];
    assert.deepEqual(
      mountsBelow(daemon.state).filter((m) => gone.some((id) => m.includes(id))),
      [],
      "no rootfs, /dev/shm or namespace mount of the removed pods is left",
    );
  });

  test("a SIGKILL in the middle of RunPodSandbox or CreateContainer leaves a whole pod or nothing of it", async () => {
    for (const delay of [5, 25, 60]) {
      const cfg = pod(`crash-${delay}`);
      const podId = await runPod(daemon.client, cfg);
      // The second pod and the container are cut off at some point of their making.
      const cfg2 = pod(`crash2-${delay}`);
      const pending = [
        daemon.client.runtimeCall("RunPodSandbox", { config: cfg2 }).catch(() => undefined),
        daemon.client.runtimeCall("CreateContainer", { podSandboxId: podId, config: containerConfig("c", busybox, ["sleep", "600"]), sandboxConfig: cfg }).catch(() => undefined),
      ];
      await sleep(delay);
      await daemon.kill();
      await Promise.all(pending);
      await daemon.restart();
      const { items } = await daemon.client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
      for (const p of items.filter((i) => i.metadata?.name === `crash2-${delay}`)) assert.equal(p.state, "SANDBOX_READY", "a pod that is listed is whole");
      const { containers } = await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { podSandboxId: podId } });
      for (const c of containers) {
        assert.equal(c.state, "CONTAINER_CREATED", "a container that is listed was created");
        await daemon.client.runtimeCall("StartContainer", { containerId: c.id });
        assert.equal((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: c.id, cmd: ["true"], timeout: "5" })).exitCode, 0);
      }
      for (const p of items.filter((i) => i.metadata?.name?.startsWith("crash"))) await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: p.id });
      // What is still mounted belongs to a pod or container that still exists (other tests' ones).
      const pods = (await daemon.client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {})).items.map((i) => i.id);
      const ctrs = (await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", {})).containers.map((c) => c.id);
      const stray = mountsBelow(daemon.state).filter((m) => /\/(pods|ns\/\w+|containers)\//.test(m) && ![...pods, ...ctrs].some((id) => m.includes(id)));
      assert.deepEqual(stray, [], `delay ${delay} ms: nothing half-made is left mounted`);
    }
  });

  test("RemoveContainer: the container is gone at once and what it held follows; after a SIGKILL right after the call, the restart finishes it", async () => {
    const cfg = pod("removal");
    const podId = await runPod(daemon.client, cfg);
    // What a container holds on the host: its rootfs mount, its directory (bundle, conmon's files),
    // the runtime's state and its cgroups.
    const held = (id: string) => ({
      mounts: mountsBelow(daemon.state).filter((m) => m.includes(id)),
      dir: existsSync(join(daemon.state, "containers", id)),
      runtimeState: existsSync(join(daemon.state, "runtime", id)),
      cgroups: cgroupDirsBelowSelf(CGROUP_ROOT).flatMap((root) => dirsNamed(root, id)),
    });
    const nothing = { mounts: [], dir: false, runtimeState: false, cgroups: [] };
    for (const crash of [false, true]) {
      const id = await runContainer(daemon.client, podId, cfg, containerConfig(crash ? "crashed" : "plain", busybox, ["sleep", "600"]));
      await waitForState(daemon.client, id, "CONTAINER_RUNNING");
      const before = held(id);
      assert.ok(before.mounts.length > 0 && before.dir && before.runtimeState && before.cgroups.length > 0, `a running container holds its rootfs, directory, runtime state and cgroups: ${JSON.stringify(before)}`);
      await daemon.client.runtimeCall("RemoveContainer", { containerId: id });
      if (crash) await daemon.kill();
      else {
        assert.deepEqual((await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { id } })).containers, []);
        await assert.rejects(daemon.client.runtimeCall("ContainerStatus", { containerId: id }), (e: { code: number }) => e.code === Code.NOT_FOUND);
      }
      if (crash) await daemon.restart();
      for (let i = 0; i < 100 && JSON.stringify(held(id)) !== JSON.stringify(nothing); i++) await sleep(50);
      assert.deepEqual(held(id), nothing, crash ? "the restart released what the container held" : "what the container held is released");
      assert.deepEqual((await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { id } })).containers, []);
    }
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  test("pid mode POD: the pod's containers see each other's processes; CONTAINER: each is PID 1 of its own", async () => {
    const shared = pod("shared-pid", { linux: { securityContext: { namespaceOptions: { network: "POD", ipc: "POD", pid: "POD" } } } });
    const podId = await runPod(daemon.client, shared);
    const a = await runContainer(daemon.client, podId, shared, containerConfig("a", busybox, ["sleep", "601"]));
    const b = await runContainer(daemon.client, podId, shared, containerConfig("b", busybox, ["sleep", "602"]));
    await waitForState(daemon.client, b, "CONTAINER_RUNNING");
    const ps = Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: a, cmd: ["ps", "-o", "args"], timeout: "5" })).stdout).toString();
    assert.match(ps, /sleep 601/);
    assert.match(ps, /sleep 602/, "a sees b's process");
    // An orphan inside the pod goes to the namespace's PID 1, the holder, which reaps it when it ends.
    const stats = async () =>
      Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: a, cmd: ["sh", "-c", "cat /proc/[0-9]*/stat"], timeout: "5" })).stdout)
        .toString()
        .split("\n")
        .filter(Boolean)
        .map((l) => ({ comm: l.slice(l.indexOf("(") + 1, l.lastIndexOf(")")), state: l.slice(l.lastIndexOf(")") + 2).split(" ")[0], ppid: Number(l.slice(l.lastIndexOf(")") + 2).split(" ")[1]) }));
    // A subshell, so as not to be taken for the holder's own `sleep 1`.
    await daemon.client.runtimeCall("ExecSync", { containerId: a, cmd: ["sh", "-c", "(sleep 2; true) & exit 0"], timeout: "5" });
    const orphan = (await stats()).filter((p) => p.comm === "sh" && p.ppid === 1);
    assert.equal(orphan.length, 1, "the orphaned subshell is the holder's child");
    await sleep(3500);
    assert.deepEqual((await stats()).filter((p) => p.state === "Z"), [], "and is reaped once it ends: no zombie in the pod");
    const { pidHolder } = JSON.parse((await daemon.client.runtimeCall<cri.PodSandboxStatusResponse>("PodSandboxStatus", { podSandboxId: podId, verbose: true })).info.info!) as { pidHolder: { pid: number } };
    assert.ok(existsSync(`/proc/${pidHolder.pid}`), "the PID namespace's holder runs");
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
    for (let i = 0; i < 50 && existsSync(`/proc/${pidHolder.pid}`); i++) await sleep(20);
    assert.ok(!existsSync(`/proc/${pidHolder.pid}`) || readFileSync(`/proc/${pidHolder.pid}/stat`, "utf8").includes(") Z "), "and goes with the pod");

    const own = pod("own-pid", { linux: { securityContext: { namespaceOptions: { network: "POD", ipc: "POD", pid: "CONTAINER" } } } });
    const ownId = await runPod(daemon.client, own);
    const c = await runContainer(daemon.client, ownId, own, containerConfig("c", busybox, ["sleep", "603"], { linux: { securityContext: { namespaceOptions: { pid: "CONTAINER" } } } }));
    await waitForState(daemon.client, c, "CONTAINER_RUNNING");
    const one = Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: c, cmd: ["cat", "/proc/1/cmdline"], timeout: "5" })).stdout).toString();
    assert.equal(one.replace(/\0/g, " ").trim(), "sleep 603");
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: ownId });
  });

  test("the security context is applied: drop ALL, RuntimeDefault seccomp, no_new_privs, read-only rootfs and a read-only bind mount", async () => {
    const cfg = pod("secure", { linux: { sysctls: { "net.ipv4.ip_unprivileged_port_start": "80" } } });
    const podId = await runPod(daemon.client, cfg);
    const data = join(work, "hostdata");
    const id = await runContainer(
      daemon.client,
      podId,
      cfg,
      containerConfig("s", busybox, ["sleep", "600"], {
        mounts: [{ containerPath: "/data", hostPath: data, readonly: true }],
        linux: {
          securityContext: {
            capabilities: { dropCapabilities: ["ALL"], addCapabilities: ["NET_BIND_SERVICE"] },
            seccomp: { profileType: "RuntimeDefault" },
            noNewPrivs: true,
            readonlyRootfs: true,
            runAsUser: { value: "1000" },
          },
        },
      }),
    );
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    const sh = async (script: string) => {
      const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["sh", "-c", script], timeout: "5" });
      return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
    };
    const status = (await sh("cat /proc/self/status")).out;
    assert.match(status, /^Uid:\s+1000\s/m, "runs as uid 1000");
    assert.match(status, /^CapBnd:\s+0000000000000400$/m, "only CAP_NET_BIND_SERVICE is left in the bounding set");
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^Seccomp:\s+2$/m, "a seccomp filter is loaded");
    assert.notEqual((await sh("touch /rootfs-write")).code, 0, "the root filesystem is read-only");
    assert.notEqual((await sh("touch /data/x")).code, 0, "the bind mount is read-only");
    assert.equal((await sh("cat /proc/sys/net/ipv4/ip_unprivileged_port_start")).out.trim(), "80", "the pod's sysctl is set in its network namespace");
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  test("privileged: refused in a pod that is not; in a privileged pod, every capability the host allows, a writable /sys and the host's devices", async () => {
    const plain = pod("not-privileged");
    const plainId = await runPod(daemon.client, plain);
    const privileged = { linux: { securityContext: { privileged: true } } };
    await assert.rejects(
      daemon.client.runtimeCall("CreateContainer", { podSandboxId: plainId, config: containerConfig("p", busybox, ["sleep", "600"], privileged), sandboxConfig: plain }),
      (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /privileged but its pod sandbox is not/.test(e.message),
    );
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: plainId });

    const cfg = pod("privileged", privileged);
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("p", busybox, ["sleep", "600"], privileged));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    const sh = async (cmd: string) => Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["sh", "-c", cmd], timeout: "10" })).stdout).toString();
    const bounding = /^CapBnd:\s*(\S+)$/m.exec(readFileSync("/proc/self/status", "utf8"))![1];
    assert.match(await sh("grep CapEff /proc/1/status"), new RegExp(`CapEff:\\s*${bounding}`), "every capability of the host's bounding set");
    assert.match(await sh("grep ' /sys ' /proc/mounts"), /sysfs \/sys sysfs rw,/);
    const host = readdirSync("/dev").filter((n) => ["null", "kmsg", "loop0", "fuse"].includes(n));
    assert.deepEqual((await sh(`cd /dev && ls -d ${host.join(" ")}`)).trim().split("\n").sort(), host.sort(), "the host's device nodes");
    if (host.includes("kmsg")) assert.match(await sh("head -c 1 /dev/kmsg >/dev/null && echo readable"), /readable/, "and its device cgroup lets them be used");
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  // containerd's rules: BIDIRECTIONAL needs a shared host mount and makes the container's root
  // rshared, HOST_TO_CONTAINER needs shared or slave and makes it rslave; without the root's
  // propagation the bind is cut off from the host's peer group and nothing crosses.
  test("mount propagation: BIDIRECTIONAL crosses both ways, HOST_TO_CONTAINER from the host only; a host path on a private mount is refused", async () => {
    const shared = join(work, "propagation-shared");
    const closed = join(work, "propagation-private");
    const sh = (cmd: string) => execFileSync("sh", ["-c", cmd]);
    sh(`mkdir -p ${shared} ${closed} && mount --bind ${shared} ${shared} && mount --make-shared ${shared} && mount --bind ${closed} ${closed} && mount --make-private ${closed}`);
    const mounted = (path: string) => readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === path);
    try {
      const privileged = { linux: { securityContext: { privileged: true } } };
      const cfg = pod("propagation", privileged);
      const podId = await runPod(daemon.client, cfg);
      const make = (name: string, propagation: string, hostPath = shared) =>
        runContainer(daemon.client, podId, cfg, containerConfig(name, busybox, ["sleep", "600"], { ...privileged, mounts: [{ containerPath: "/data", hostPath, propagation: propagation as cri.MountPropagation }] }));
      const both = await make("both", "PROPAGATION_BIDIRECTIONAL");
      const down = await make("down", "PROPAGATION_HOST_TO_CONTAINER");
      const exec = async (id: string, cmd: string) => Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["sh", "-c", cmd], timeout: "10" })).stdout).toString();
      await waitForState(daemon.client, down, "CONTAINER_RUNNING");
      await exec(both, "mkdir -p /data/from-both && mount -t tmpfs tmpfs /data/from-both");
      await exec(down, "mkdir -p /data/from-down && mount -t tmpfs tmpfs /data/from-down");
      sh(`mkdir -p ${shared}/from-host && mount -t tmpfs tmpfs ${shared}/from-host`);
      assert.ok(mounted(join(shared, "from-both")), "a mount made in the BIDIRECTIONAL container reaches the host");
      assert.ok(!mounted(join(shared, "from-down")), "one made in the HOST_TO_CONTAINER container does not");
      for (const id of [both, down]) assert.match(await exec(id, "grep ' /data/from-host ' /proc/mounts"), /tmpfs/, "the host's mount reaches both containers");
      await assert.rejects(make("refused", "PROPAGATION_BIDIRECTIONAL", closed), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /which is not shared/.test(e.message));
      await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
    } finally {
      sh(`umount -R ${shared} 2>/dev/null; umount -R ${closed} 2>/dev/null; rmdir ${shared}/* 2>/dev/null; true`);
    }
    assert.ok(!mounted(shared) && !mounted(closed), "the test's mounts are gone");
  });

  test("a host-network pod sees the host's interfaces and hostname", async () => {
    const cfg = pod("hostnet", { hostname: "", linux: { securityContext: { namespaceOptions: { network: "NODE", ipc: "POD", pid: "CONTAINER" } } } });
    const podId = await runPod(daemon.client, cfg);
    const st = (await daemon.client.runtimeCall<cri.PodSandboxStatusResponse>("PodSandboxStatus", { podSandboxId: podId })).status!;
    assert.equal(st.linux?.namespaces?.options?.network, "NODE");
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("h", busybox, ["sleep", "600"]));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    const links = Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["cat", "/proc/net/dev"], timeout: "5" })).stdout).toString();
    assert.ok(links.includes(BRIDGE), "the host's bridge is visible: the host's network namespace");
    const name = Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["hostname"], timeout: "5" })).stdout).toString().trim();
    assert.equal(name, hostname());
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  test("ExecSync past its timeout answers DEADLINE_EXCEEDED and leaves the container running", async () => {
    const cfg = pod("exec-timeout");
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("t", busybox, ["sleep", "600"]));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    await assert.rejects(
      daemon.client.runtimeCall("ExecSync", { containerId: id, cmd: ["sleep", "30"], timeout: "1" }),
      (e: { code: number }) => e.code === Code.DEADLINE_EXCEEDED,
    );
    assert.equal((await status(daemon.client, id)).state, "CONTAINER_RUNNING");
    const ps = Buffer.from((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["ps", "-o", "args"], timeout: "5" })).stdout).toString();
    assert.ok(!ps.includes("sleep 30"), `the timed-out command was killed:\n${ps}`);
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  test("concurrent requests: one name, one pod; stop and remove of one container at once both succeed; different pods in parallel", async () => {
    const same = pod("racer");
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => daemon.client.runtimeCall<cri.RunPodSandboxResponse>("RunPodSandbox", { config: same })));
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1, "exactly one RunPodSandbox gets the name");
    for (const r of results) if (r.status === "rejected") assert.equal((r.reason as { code: number }).code, Code.ALREADY_EXISTS);
    const podId = (won[0] as PromiseFulfilledResult<cri.RunPodSandboxResponse>).value.podSandboxId;
    const id = await runContainer(daemon.client, podId, same, containerConfig("r", busybox, ["sleep", "600"]));
    await Promise.all([daemon.client.runtimeCall("StopContainer", { containerId: id, timeout: "0" }), daemon.client.runtimeCall("RemoveContainer", { containerId: id })]);
    const { containers } = await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { podSandboxId: podId } });
    assert.deepEqual(containers, []);
    const many = await Promise.all([1, 2, 3].map((n) => runPod(daemon.client, pod(`parallel-${n}`))));
    assert.equal(new Set(many).size, 3);
    await Promise.all([podId, ...many].map((p) => daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: p })));
  });

  test("runtime_handler runc runs the pod's containers with runc behind conmon", async () => {
    const cfg = pod("with-runc");
    const { podSandboxId } = await daemon.client.runtimeCall<cri.RunPodSandboxResponse>("RunPodSandbox", { config: cfg, runtimeHandler: "runc" });
    const id = await runContainer(daemon.client, podSandboxId, cfg, containerConfig("c", busybox, ["sh", "-c", "echo via-runc; sleep 600"]));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["hostname"], timeout: "5" });
    assert.equal(Buffer.from(r.stdout).toString().trim(), "with-runc");
    const runcList = execFileSync("runc", ["--root", join(daemon.state, "runtimes", "runc"), "list", "-q"], { encoding: "utf8" });
    assert.ok(runcList.split("\n").includes(id), "runc knows the container");
    await daemon.client.runtimeCall("StopContainer", { containerId: id, timeout: "0" });
    assert.equal((await status(daemon.client, id)).exitCode, 137);
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId });
    assert.ok(!execFileSync("runc", ["--root", join(daemon.state, "runtimes", "runc"), "list", "-q"], { encoding: "utf8" }).includes(id), "and forgets it once removed");
    await assert.rejects(
      daemon.client.runtimeCall("RunPodSandbox", { config: pod("no-such-handler"), runtimeHandler: "kata" }),
      (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /kata/.test(e.message),
    );
  });

  test("GetContainerEvents streams created, started, stopped and deleted, in order", async () => {
    const stream = daemon.client.runtimeStream<cri.ContainerEventResponse>("GetContainerEvents", {});
    const seen: Array<[string, string]> = [];
    const reading = (async () => {
      for await (const e of stream) {
        seen.push([e.containerId, e.containerEventType]);
        if (e.containerEventType === "CONTAINER_DELETED_EVENT") break;
      }
    })().catch(() => {});
    await sleep(100);
    const cfg = pod("events");
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("ev", busybox, ["sleep", "600"]));
    await daemon.client.runtimeCall("StopContainer", { containerId: id, timeout: "0" });
    await daemon.client.runtimeCall("RemoveContainer", { containerId: id });
    for (let i = 0; i < 50 && seen.length < 4; i++) await sleep(20);
    stream.cancel();
    await reading;
    assert.deepEqual(
      seen.filter(([c]) => c === id).map(([, t]) => t),
      ["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT", "CONTAINER_DELETED_EVENT"],
    );
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  // An ExecSync's conmon once made its control FIFOs in the container's bundle, replacing the
  // container conmon's: the next ReopenContainerLog (kubelet's log rotation, after any exec
  // probe) then waited forever on a FIFO nobody read, holding one of the daemon's file threads.
  test("UpdateContainerResources changes the live memory limit; ReopenContainerLog starts a new file after rotation, also after an ExecSync", async () => {
    const cfg = pod("update");
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("u", busybox, ["sh", "-c", "while true; do echo tick; sleep 0.1; done"], { linux: { resources: { memoryLimitInBytes: String(64 << 20) } } }));
    await waitForState(daemon.client, id, "CONTAINER_RUNNING");
    const limit = async () => (await daemon.client.runtimeCall<cri.ContainerStatsResponse>("ContainerStats", { containerId: id })).stats!.memory!.availableBytes;
    assert.ok(await limit(), "a limit is reported");
    await daemon.client.runtimeCall("UpdateContainerResources", { containerId: id, linux: { memoryLimitInBytes: String(32 << 20) } });
    const st = await status(daemon.client, id);
    assert.equal(st.resources?.linux?.memoryLimitInBytes, String(32 << 20), "ContainerStatus reports the new limit");
    const memDir = memoryCgroupOf(CGROUP_ROOT, id);
    assert.equal(readFileSync(join(memDir, "memory.limit_in_bytes"), "utf8").trim(), String(32 << 20), "the kernel has the new limit");
    const logPath = st.logPath;
    assert.equal((await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: id, cmd: ["true"], timeout: "5" })).exitCode, 0);
    renameSync(logPath, `${logPath}.1`);
    await Promise.race([
      daemon.client.runtimeCall("ReopenContainerLog", { containerId: id }),
      sleep(10_000).then(() => Promise.reject(new Error("ReopenContainerLog did not answer within 10 s"))),
    ]);
    for (let i = 0; i < 50 && !existsSync(logPath); i++) await sleep(50);
    await sleep(300);
    assert.ok(readCriLog(logPath).some((l) => l.content === "tick"), "new lines go to a new file at the old path");
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });

  test("Status reports RuntimeReady and NetworkReady; RuntimeConfig names the cgroupfs driver", async () => {
    const s = await daemon.client.runtimeCall<cri.StatusResponse>("Status", { verbose: true });
    const cond = Object.fromEntries(s.status!.conditions.map((c) => [c.type, c.status]));
    assert.deepEqual(cond, { RuntimeReady: true, NetworkReady: true });
    assert.deepEqual(s.runtimeHandlers.map((h) => h.name).sort(), ["berth", "runc"]);
    const rc = await daemon.client.runtimeCall<cri.RuntimeConfigResponse>("RuntimeConfig", {});
    assert.equal(rc.linux?.cgroupDriver, "CGROUPFS");
  });

  test("ListPodSandbox and ListContainers filter by state, id prefix and labels", async () => {
    const cfg = pod("listed", { labels: { tier: "listed" } });
    const podId = await runPod(daemon.client, cfg);
    const id = await runContainer(daemon.client, podId, cfg, containerConfig("listed", busybox, ["sleep", "600"], { labels: { tier: "listed" } }));
    const pods = await daemon.client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", { filter: { labelSelector: { tier: "listed" } } });
    assert.deepEqual(pods.items.map((p) => p.id), [podId]);
    const byPrefix = await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { id: id.slice(0, 12) } });
    assert.deepEqual(byPrefix.containers.map((c) => c.id), [id]);
    const running = await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { state: { state: "CONTAINER_RUNNING" }, labelSelector: { tier: "listed" } } });
    assert.deepEqual(running.containers.map((c) => c.id), [id]);
    await daemon.client.runtimeCall("StopPodSandbox", { podSandboxId: podId });
    const ready = await daemon.client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", { filter: { state: { state: "SANDBOX_READY" }, labelSelector: { tier: "listed" } } });
    assert.deepEqual(ready.items, []);
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: podId });
  });
});

/** The container's directory in the v1 memory hierarchy, found below the daemon's cgroup root. */
function memoryCgroupOf(root: string, id: string): string {
  const base = cgroupDirsBelowSelf(root).find((d) => /\/memory(,|\/)/.test(d) || d.includes("/memory/"));
  if (!base) throw new Error("no memory hierarchy");
  const walk = (dir: string): string | undefined => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name === id) return join(dir, e.name);
      const found = walk(join(dir, e.name));
      if (found) return found;
    }
    return undefined;
  };
  const found = walk(base);
  if (!found) throw new Error(`no memory cgroup for ${id} below ${base}`);
  return found;
}
