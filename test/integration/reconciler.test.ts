// The reconciler against a real `berth serve --manifests` and a real registry: what a user of a
// git-synced folder sees. Edits replace pods, a symlink swap applies at once, a broken file takes
// nothing down, removed files prune, crashes back off, drift is repaired, probes act, Deployments
// scale and roll without losing readiness, and a daemon killed mid-apply converges without
// duplicates. The folder is a git-sync layout: `manifests` → `.worktrees/<hash>`.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ObjectStatus, ReconcileEvent } from "../../reconciler/status";
import type * as cri from "../../runtime/api/cri-v1";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { hostNetworkSnapshot, type HostNetworkSnapshot, restoreHostNetwork } from "../support/host-network";
import { forceClean, readCriLog, stopAndRemovePods } from "../support/pods";
import { freePort, startRegistry } from "../support/registry";
import { cgroupDirsBelowSelf } from "../support/runtime-pair";
import { buildTestImages, pushLayout } from "../support/test-images";

const BRIDGE = `br${process.pid % 100000}`;
const SUBNET = `10.87.${process.pid % 250}.0/24`;
const CGROUP_ROOT = `berth-test-reconciler-${process.pid}`;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000, every = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

describe("reconciler: a git-synced folder converged by berth serve", () => {
  let work: string;
  let daemon: TestDaemon;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let net: HostNetworkSnapshot;
  let image: string;
  let image2: string;
  let webPort: number;
  let folder: string;
  let revision = 0;
  let api = "";

  /** Publishes `files` and waits until the daemon has read them (status shows the revision). */
  async function publish(files: Record<string, string>): Promise<string> {
    const hash = await swap(files);
    if (api) await waitFor(`revision ${hash} read`, async () => (await objects()).revision === hash, 10_000, 20);
    return hash;
  }

  /** Writes a new worktree with `files` and swaps the `manifests` link to it, as git-sync does. */
  async function swap(files: Record<string, string>): Promise<string> {
    const hash = (++revision).toString(16).padStart(40, "0");
    const tree = join(work, "repo", ".worktrees", hash);
    await mkdir(tree, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(tree, name, ".."), { recursive: true });
      await writeFile(join(tree, name), text);
    }
    const tmp = join(work, "repo", `.manifests-${hash}`);
    await symlink(join(".worktrees", hash), tmp);
    await rename(tmp, folder);
    return hash;
  }

  async function objects(): Promise<{ revision: string | null; objects: ObjectStatus[] }> {
    const res = await fetch(`http://${api}/api/v1/objects`);
    return (await res.json()) as { revision: string | null; objects: ObjectStatus[] };
  }
  async function object(kind: string, name: string): Promise<ObjectStatus | undefined> {
    return (await objects()).objects.find((o) => o.kind === kind && o.name === name);
  }
  async function events(): Promise<ReconcileEvent[]> {
    return ((await (await fetch(`http://${api}/api/v1/events`)).json()) as { events: ReconcileEvent[] }).events;
  }
  const healthy = (kind: string, name: string, ms?: number) =>
    waitFor(`${kind}/${name} Synced and Healthy`, async () => {
      const o = await object(kind, name);
      return o?.sync === "Synced" && o.health === "Healthy" ? o : undefined;
    }, ms);
  async function sandboxes(name?: string): Promise<cri.PodSandbox[]> {
    const { items } = await daemon.client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
    return items.filter((s) => !name || s.metadata?.name === name || s.metadata?.name.startsWith(`${name}-`));
  }
  async function containersOf(podId: string): Promise<cri.Container[]> {
    return (await daemon.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { podSandboxId: podId } })).containers;
  }
  async function execIn(podName: string, cmd: string[]): Promise<string> {
    const [sb] = (await sandboxes(podName)).filter((s) => s.metadata?.name === podName && s.state === "SANDBOX_READY");
    const [c] = (await containersOf(sb!.id)).filter((x) => x.state === "CONTAINER_RUNNING");
    const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: c!.id, cmd, timeout: "5" });
    return Buffer.from(r.stdout).toString();
  }

  const configMap = (page: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-content
data:
  index.html: "${page}"
`;
  const webPod = (o: { image?: string; env?: string; command?: string; probePath?: string; memory?: string } = {}) => `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: { app: web }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: httpd
      image: ${o.image ?? image}
      command: ${o.command ?? '["httpd", "-f", "-p", "80", "-h", "/www"]'}
      env:
        - name: GREETING
          value: "${o.env ?? "hello"}"
      ports:
        - containerPort: 80
          hostPort: ${webPort}
          hostIP: 127.0.0.1
      volumeMounts:
        - name: content
          mountPath: /www
      readinessProbe:
        httpGet: { path: "${o.probePath ?? "/"}", port: 80 }
        periodSeconds: 1
      resources:
        limits: { memory: ${o.memory ?? "64Mi"} }
  volumes:
    - name: content
      configMap: { name: web-content }
`;
  const deployment = (o: { replicas?: number; image?: string; ready?: string } = {}) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: ${o.replicas ?? 2}
  selector:
    matchLabels: { app: worker }
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxSurge: 1, maxUnavailable: 0 }
  template:
    metadata:
      labels: { app: worker }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: worker
          image: ${o.image ?? image}
          command: ["sh", "-c", "sleep ${o.ready ?? "0"}; touch /tmp/ready; exec sleep 3600"]
          readinessProbe:
            exec: { command: ["test", "-f", "/tmp/ready"] }
            periodSeconds: 1
`;
  /** A Pod that sleeps; `more` goes on as further lines of its container. */
  const simplePod = (name: string, more = "") => `apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${image}
      command: ["sleep", "3600"]
${more}`;
  let files: Record<string, string>;

  before(async () => {
    net = hostNetworkSnapshot();
    work = await mkdtemp(join(tmpdir(), "berth-reconciler-"));
    registry = await startRegistry();
    const images = await buildTestImages(join(work, "layouts"));
    await pushLayout(images.busybox.layout, images.busybox.tag, registry.host, images.busybox.repo);
    await pushLayout(images.busybox.layout, images.busybox.tag, registry.host, `${images.busybox.repo}-two`);
    image = `${registry.host}/${images.busybox.repo}:${images.busybox.tag}`;
    image2 = `${registry.host}/${images.busybox.repo}-two:${images.busybox.tag}`;
    webPort = await freePort();
    folder = join(work, "repo", "manifests");
    files = { "web.yaml": `${configMap("page-one")}---\n${webPod()}`, "apps/worker.yaml": deployment() };
    await mkdir(join(work, "repo"), { recursive: true });
    await publish(files);
    daemon = await startDaemon({
      dir: join(work, "daemon"),
      insecureRegistries: [registry.host],
      args: ["--manifests", folder, "--resync", "0"],
      // Small logs, checked often: the rotation test's chatty pod rotates within a second.
      config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: SUBNET }, reconciler: { containerLogMaxSize: 16384, containerLogMaxFiles: 3, containerLogMonitorSeconds: 0.3 } },
    });
    api = JSON.parse(await readFile(join(daemon.state, "daemon.json"), "utf8")).http;
  });

  after(async () => {
    try {
      if (daemon) await stopAndRemovePods(daemon, { dir: join(work, "daemon"), config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: SUBNET } } });
    } finally {
      // BERTH_TEST_LOGS=DIR keeps the daemon's log for a failed run.
      if (process.env.BERTH_TEST_LOGS && daemon) await writeFile(join(process.env.BERTH_TEST_LOGS, "reconciler-daemon.log"), daemon.logs()).catch(() => {});
      const leftovers = work ? await forceClean(work, cgroupDirsBelowSelf(CGROUP_ROOT)) : [];
      restoreHostNetwork(net, BRIDGE);
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
      assert.deepEqual(leftovers, [], "the daemon removed everything itself");
    }
  });

  test("a Pod with a ConfigMap page and a Deployment run from the folder; status says Synced and Healthy with the revision", async () => {
    const web = await healthy("Pod", "web");
    const worker = await healthy("Deployment", "worker");
    assert.deepEqual(worker.replicas, { desired: 2, current: 2, updated: 2, ready: 2 });
    assert.equal(web.revision, "1".padStart(40, "0"));
    const page = await waitFor("the page on the hostPort", async () => (await fetch(`http://127.0.0.1:${webPort}/index.html`)).text());
    assert.equal(page, "page-one");
    const cli = await daemon.cli(["status"]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /Pod\s+default\s+web\s+Synced\s+Healthy\s+1\/1/);
    assert.match(cli.stdout, /Deployment\s+default\s+worker\s+Synced\s+Healthy\s+2\/2/);
    const json = JSON.parse((await daemon.cli(["status", "-o", "json"])).stdout) as { objects: ObjectStatus[] };
    assert.ok(json.objects.some((o) => o.kind === "ConfigMap" && o.name === "web-content" && o.sync === "Synced"));
    const one = await fetch(`http://${api}/api/v1/objects/Pod/default/web`);
    assert.equal(((await one.json()) as ObjectStatus).name, "web");
    assert.equal((await fetch(`http://${api}/api/v1/objects/Pod/default/nope`)).status, 404);
  });

  test("each edit (image, env, command, probe, memory limit, ConfigMap page) replaces the pod; berth diff names the field first", async () => {
    const edits: Array<{ field: RegExp; pod: Parameters<typeof webPod>[0]; page?: string }> = [
      { field: /containers\[httpd\]\.image/, pod: { image: image2 } },
      { field: /containers\[httpd\]\.env/, pod: { image: image2, env: "bonjour" } },
      { field: /containers\[httpd\]\.command/, pod: { image: image2, env: "bonjour", command: '["httpd", "-f", "-v", "-p", "80", "-h", "/www"]' } },
      { field: /containers\[httpd\]\.probes/, pod: { image: image2, env: "bonjour", command: '["httpd", "-f", "-v", "-p", "80", "-h", "/www"]', probePath: "/index.html" } },
      { field: /containers\[httpd\]\.resources/, pod: { image: image2, env: "bonjour", command: '["httpd", "-f", "-v", "-p", "80", "-h", "/www"]', probePath: "/index.html", memory: "96Mi" } },
      { field: /volumes\[content\]\.configMap/, pod: { image: image2, env: "bonjour", command: '["httpd", "-f", "-v", "-p", "80", "-h", "/www"]', probePath: "/index.html", memory: "96Mi" }, page: "page-two" },
    ];
    for (const e of edits) {
      const before = (await sandboxes("web")).find((s) => s.metadata?.name === "web")!;
      const next = { ...files, "web.yaml": `${configMap(e.page ?? "page-one")}---\n${webPod(e.pod)}` };
      // diff reads a plain folder: the next worktree, before it is published.
      const preview = join(work, "preview");
      await rm(preview, { recursive: true, force: true });
      await mkdir(join(preview, "apps"), { recursive: true });
      for (const [n, t] of Object.entries(next)) await writeFile(join(preview, n), t);
      const diff = await daemon.cli(["diff", preview]);
      assert.equal(diff.code, 0, diff.stderr);
      assert.match(diff.stdout, /~ replace Pod\/default\/web/);
      assert.match(diff.stdout, e.field, diff.stdout);
      assert.doesNotMatch(diff.stdout, /worker/, "the Deployment is unchanged");
      files = next;
      await publish(files);
      await waitFor(`web replaced after the ${e.field} edit`, async () => {
        const now = (await sandboxes("web")).filter((s) => s.metadata?.name === "web");
        return now.length === 1 && now[0]!.id !== before.id && now[0]!.state === "SANDBOX_READY";
      });
      await healthy("Pod", "web");
    }
    assert.equal(await execIn("web", ["sh", "-c", "echo $GREETING"]), "bonjour\n");
    assert.equal(await (await fetch(`http://127.0.0.1:${webPort}/index.html`)).text(), "page-two");
    const st = await daemon.client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", {
      containerId: (await containersOf((await sandboxes("web"))[0]!.id))[0]!.id,
    });
    assert.equal(st.status!.resources?.linux?.memoryLimitInBytes, String(96 * 2 ** 20));
    assert.ok((await events()).some((e) => e.reason === "Replacing" && /containers\[httpd\]\.image/.test(e.message)));
  });

  test("a git-sync symlink swap is seen within a second and applied as one change", async () => {
    const t0 = Date.now();
    files = { ...files, "apps/worker.yaml": deployment().replace("touch /tmp/ready", "touch /tmp/ready /tmp/swapped") };
    const hash = await swap(files);
    await waitFor("the new revision in status", async () => (await objects()).revision === hash, 1000, 20);
    const seenMs = Date.now() - t0;
    assert.ok(seenMs <= 1000, `revision seen after ${seenMs} ms`);
    const w = await waitFor("worker synced at the new revision", async () => {
      const o = await object("Deployment", "worker");
      return o?.revision === hash && o.sync === "Synced" && o.health === "Healthy" ? o : undefined;
    });
    assert.equal(w.replicas!.ready, 2);
  });

  test("a broken file is reported with file, line and column while its pod keeps running; the other files still apply", async () => {
    const web = (await sandboxes("web")).find((s) => s.metadata?.name === "web")!;
    const good = files["web.yaml"]!;
    files = { ...files, "web.yaml": good.replace("  name: web\n", "  name: web\n  labels: [unclosed\n"), "extra.yaml": simplePod("extra") };
    await publish(files);
    const st = await waitFor("the syntax error in status", async () => {
      const o = await object("Pod", "web");
      return o?.lastError ? o : undefined;
    });
    assert.match(st.lastError!.message, /^web\.yaml:\d+:\d+: /);
    assert.equal(st.lastError!.file, "web.yaml");
    assert.ok(st.lastError!.line! > 1);
    assert.equal(st.sync, "OutOfSync");
    await healthy("Pod", "extra");
    const still = (await sandboxes("web")).find((s) => s.metadata?.name === "web")!;
    assert.equal(still.id, web.id, "the pod of the broken file was not touched");
    assert.equal(still.state, "SANDBOX_READY");
    // Schema violations too: a wrong type names the field.
    files = { ...files, "web.yaml": good.replace("containerPort: 80", 'containerPort: "eighty"') };
    await publish(files);
    const schema = await waitFor("the schema error in status", async () => {
      const o = await object("Pod", "web");
      return o?.lastError?.field?.includes("containerPort") ? o : undefined;
    });
    assert.match(schema.lastError!.message, /web\.yaml:\d+:\d+: .*containerPort/);
    assert.equal((await sandboxes("web")).find((s) => s.metadata?.name === "web")!.id, web.id);
    files = { ...files, "web.yaml": good };
    delete files["extra.yaml"];
    await publish(files);
    await healthy("Pod", "web");
    assert.equal((await object("Pod", "web"))!.lastError, undefined);
    await waitFor("extra pruned", async () => (await sandboxes("extra")).length === 0);
  });

  test("two objects with the same name: both places reported, the older one kept", async () => {
    const dup = deployment().replace("replicas: 2", "replicas: 3");
    files = { ...files, "zz-dup.yaml": dup };
    await publish(files);
    const ev = await waitFor("the duplicate reported at both places", async () => {
      const found = (await events()).filter((e) => /also declared/.test(e.message));
      return found.length >= 2 ? found : undefined;
    });
    assert.ok(ev.some((e) => /zz-dup\.yaml/.test(e.message)) && ev.some((e) => /apps\/worker\.yaml/.test(e.message)), JSON.stringify(ev));
    const w = await object("Deployment", "worker");
    assert.equal(w!.replicas!.desired, 2, "the older declaration is the one applied");
    delete files["zz-dup.yaml"];
    await publish(files);
  });

  test("removing a file prunes its pods; removing a Deployment's file prunes its replicas", async () => {
    files = { ...files, "once.yaml": simplePod("once") };
    await publish(files);
    await healthy("Pod", "once");
    delete files["once.yaml"];
    await publish(files);
    await waitFor("once pruned", async () => (await sandboxes("once")).length === 0);
    assert.equal(await object("Pod", "once"), undefined);
    assert.ok((await events()).some((e) => e.reason === "Deleted" && /once: deleted \(no longer in the folder\)/.test(e.message)));
  });

  // kubelet's admission (the NodePorts check): a second pod on a host port would start, look
  // healthy and never get a connection (portmap's first rule wins).
  test("a pod asking for a hostPort another pod holds is refused and reported; once the port is free it is made", async () => {
    const portPod = (name: string, port: number) => simplePod(name, `      ports:\n        - { containerPort: 80, hostPort: ${port} }\n`);
    const shared = await freePort();
    const page = await (await fetch(`http://127.0.0.1:${webPort}/index.html`)).text();
    // clash.yaml comes before web.yaml in the folder, but web runs: it keeps its port.
    files = { ...files, "clash.yaml": portPod("clash", webPort), "holder.yaml": portPod("holder", shared), "waiter.yaml": portPod("waiter", shared) };
    const preview = join(work, "preview-ports");
    await mkdir(join(preview, "apps"), { recursive: true });
    for (const [n, t] of Object.entries(files)) await writeFile(join(preview, n), t);
    const diff = await daemon.cli(["diff", preview]);
    assert.match(diff.stdout, /^! refuse {2}Pod\/default\/clash {2}pod clash \(hostPort 0\.0\.0\.0:\d+\/TCP \(spec\.containers\[0\]\.ports\[0\]\.hostPort\) is taken by pod default\/web/m, diff.stdout);
    assert.match(diff.stdout, /^\+ create {2}Pod\/default\/holder/m);
    assert.match(diff.stdout, /^! refuse {2}Pod\/default\/waiter/m);
    await publish(files);
    await healthy("Pod", "holder");
    for (const [name, holder] of [
      ["clash", "web"],
      ["waiter", "holder"],
    ] as const) {
      const o = await waitFor(`${name} refused`, async () => {
        const x = await object("Pod", name);
        return x?.health === "Degraded" && x.message.includes(`is taken by pod default/${holder}`) ? x : undefined;
      });
      assert.equal(o.sync, "OutOfSync");
      assert.deepEqual(await sandboxes(name), [], `${name} is not made`);
    }
    assert.ok((await events()).some((e) => e.reason === "HostPortConflict" && /pod clash: hostPort/.test(e.message)));
    assert.equal(await (await fetch(`http://127.0.0.1:${webPort}/index.html`)).text(), page, "web still answers on its port");
    const { "clash.yaml": _c, "holder.yaml": _h, ...rest } = files;
    files = rest;
    await publish(files);
    await healthy("Pod", "waiter");
    delete files["waiter.yaml"];
    await publish(files);
    await waitFor("the test's pods pruned", async () => (await sandboxes()).every((s) => !["clash", "holder", "waiter"].includes(s.metadata?.name ?? "")));
  });

  // No kubelet rotates the logs of the pods the reconciler runs: berth does, as kubelet would.
  test("a chatty container's log is rotated past containerLogMaxSize, keeping containerLogMaxFiles files, and goes on in a fresh file", async () => {
    files = { ...files, "chatty.yaml": simplePod("chatty").replace('command: ["sleep", "3600"]', `command: ["sh", "-c", "while true; do echo ${"x".repeat(500)}; sleep 0.02; done"]`) };
    await publish(files);
    await healthy("Pod", "chatty");
    const [sandbox] = await sandboxes("chatty");
    const [c] = await containersOf(sandbox!.id);
    const logPath = (await daemon.client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: c!.id })).status!.logPath;
    const dir = dirname(logPath);
    const rotated = () => readdirSync(dir).filter((n) => n.startsWith(`${basename(logPath)}.`));
    await waitFor("two rotated copies", async () => rotated().length === 2, 20_000);
    await sleep(1500);
    assert.ok(rotated().length <= 2, `at most containerLogMaxFiles - 1 rotated copies: ${rotated().join(", ")}`);
    // Rotation goes on meanwhile: a copy may be gone by the time it is read.
    const firstLines = rotated()
      .map((n) => {
        try {
          return readFileSync(join(dir, n), "utf8").split("\n")[0];
        } catch {
          return undefined;
        }
      })
      .filter((l) => l !== undefined);
    for (const l of firstLines) assert.match(l!, /^\S+ stdout [FP] x+$/, "a rotated copy holds the container's CRI log lines");
    await waitFor("lines in the current file", async () => readCriLog(logPath).some((l) => /^x+$/.test(l.content)), 5000);
    await waitFor("the current file near containerLogMaxSize", async () => statSync(logPath).size <= 16384 * 4, 5000);
    delete files["chatty.yaml"];
    await publish(files);
    await waitFor("chatty pruned", async () => (await sandboxes("chatty")).length === 0);
  });

  test("a crashing container restarts at once, then after kubelet's 10 s back-off", async () => {
    files = {
      ...files,
      "crash.yaml": `apiVersion: v1
kind: Pod
metadata: { name: crash }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${image}
      command: ["sh", "-c", "echo crashing; exit 3"]
`,
    };
    await publish(files);
    const [sb] = await waitFor("the crash pod", async () => {
      const s = await sandboxes("crash");
      return s.length ? s : undefined;
    });
    const starts: number[] = [];
    await waitFor(
      "three starts of the crashing container",
      async () => {
        const cs = await containersOf(sb!.id);
        for (const c of cs) {
          const st = (await daemon.client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: c.id })).status!;
          const attempt = c.metadata!.attempt;
          if (st.startedAt !== "0" && starts[attempt] === undefined) starts[attempt] = Number(BigInt(st.startedAt) / 1_000_000n);
        }
        return starts[2] !== undefined;
      },
      30_000,
      200,
    );
    const gap1 = (starts[1]! - starts[0]!) / 1000;
    const gap2 = (starts[2]! - starts[1]!) / 1000;
    assert.ok(gap1 < 3, `first restart after ${gap1} s (immediate)`);
    assert.ok(gap2 >= 9 && gap2 < 14, `second restart after ${gap2} s (10 s back-off)`);
    // Between its brief runs the pod waits in back-off, and says so.
    const st = await waitFor("crash Degraded in CrashLoopBackOff", async () => {
      const o = await object("Pod", "crash");
      return o?.health === "Degraded" && /CrashLoopBackOff/.test(o.message) ? o : undefined;
    });
    assert.ok(st.restarts >= 1, `restarts ${st.restarts}`);
    delete files["crash.yaml"];
    await publish(files);
  });

  test("drift: a container killed and a pod removed through CRI are put back, and the drift is recorded", async () => {
    await healthy("Pod", "web");
    const [sb] = (await sandboxes("web")).filter((s) => s.metadata?.name === "web");
    const [c] = await containersOf(sb!.id);
    await daemon.client.runtimeCall("StopContainer", { podSandboxId: sb!.id, containerId: c!.id, timeout: "0" });
    await waitFor("the killed container restarted", async () => (await containersOf(sb!.id)).some((x) => x.state === "CONTAINER_RUNNING" && x.id !== c!.id));
    const afterKill = (await object("Pod", "web"))!;
    assert.ok(afterKill.drift >= 1);
    assert.match(afterKill.lastDrift!.message, /killed outside berth/);
    // Steps of one outside action within a second count as one drift: this is a second action.
    await sleep(1500);
    await daemon.client.runtimeCall("StopPodSandbox", { podSandboxId: sb!.id });
    await daemon.client.runtimeCall("RemovePodSandbox", { podSandboxId: sb!.id });
    await waitFor("web put back", async () => (await sandboxes("web")).some((s) => s.metadata?.name === "web" && s.id !== sb!.id && s.state === "SANDBOX_READY"));
    const st = await healthy("Pod", "web");
    assert.equal(st.drift, afterKill.drift + 1);
    assert.match(st.lastDrift!.message, /removed outside berth|stopped outside berth/);
    assert.equal(await (await fetch(`http://127.0.0.1:${webPort}/index.html`)).text(), "page-two");
  });

  test("init containers run to completion in order before the container starts; an emptyDir carries their work", async () => {
    files = {
      ...files,
      "init.yaml": `apiVersion: v1
kind: Pod
metadata: { name: init }
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
    - name: first
      image: ${image}
      command: ["sh", "-c", "echo one > /work/log"]
      volumeMounts: [{ name: work, mountPath: /work }]
    - name: second
      image: ${image}
      command: ["sh", "-c", "echo two >> /work/log"]
      volumeMounts: [{ name: work, mountPath: /work }]
  containers:
    - name: main
      image: ${image}
      command: ["sh", "-c", "echo three >> /work/log; exec sleep 3600"]
      volumeMounts: [{ name: work, mountPath: /work }]
  volumes:
    - name: work
      emptyDir: {}
`,
    };
    await publish(files);
    await healthy("Pod", "init");
    assert.equal(await execIn("init", ["cat", "/work/log"]), "one\ntwo\nthree\n");
    const [sb] = await sandboxes("init");
    const cs = await containersOf(sb!.id);
    const byName = Object.fromEntries(cs.map((c) => [c.metadata!.name, c.state]));
    assert.deepEqual(byName, { first: "CONTAINER_EXITED", second: "CONTAINER_EXITED", main: "CONTAINER_RUNNING" });
    delete files["init.yaml"];
    await publish(files);
  });

  test("a failing liveness probe restarts the container; a failing readiness probe takes Ready away without a restart", async () => {
    files = {
      ...files,
      "probed.yaml": `apiVersion: v1
kind: Pod
metadata: { name: probed }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${image}
      command: ["sh", "-c", "touch /tmp/live /tmp/ready; exec sleep 3600"]
      livenessProbe:
        exec: { command: ["test", "-f", "/tmp/live"] }
        periodSeconds: 1
        failureThreshold: 2
      readinessProbe:
        exec: { command: ["test", "-f", "/tmp/ready"] }
        periodSeconds: 1
        failureThreshold: 1
`,
    };
    await publish(files);
    await healthy("Pod", "probed");
    await execIn("probed", ["rm", "/tmp/ready"]);
    const notReady = await waitFor("probed not ready", async () => {
      const o = await object("Pod", "probed");
      return o && !o.pods[0]?.ready ? o : undefined;
    });
    assert.equal(notReady.restarts, 0, "readiness does not restart");
    await execIn("probed", ["rm", "/tmp/live"]);
    const restarted = await waitFor("probed restarted by its liveness probe", async () => {
      const o = await object("Pod", "probed");
      return o && o.restarts >= 1 && o.health === "Healthy" ? o : undefined;
    });
    assert.equal(restarted.pods[0]!.ready, true, "the new instance is ready again");
    assert.ok((await events()).some((e) => e.reason === "Unhealthy" && /liveness probe failed/.test(e.message)));
    delete files["probed.yaml"];
    await publish(files);
  });

  test("a Deployment scales 2→4→1 and rolls to a new image with maxUnavailable 0 without ever dropping below its replicas ready", async () => {
    files = { ...files, "apps/worker.yaml": deployment({ replicas: 4 }) };
    await publish(files);
    let w = await healthy("Deployment", "worker");
    assert.equal(w.replicas!.ready, 4);
    assert.equal((await sandboxes("worker")).length, 4);
    files = { ...files, "apps/worker.yaml": deployment({ replicas: 1 }) };
    await publish(files);
    await waitFor("worker at 1 replica", async () => (await sandboxes("worker")).length === 1);
    files = { ...files, "apps/worker.yaml": deployment({ replicas: 2 }) };
    await publish(files);
    w = await healthy("Deployment", "worker");
    const oldNames = (await sandboxes("worker")).map((s) => s.metadata!.name);
    // New replicas take 2 s to become ready: an old one may go only when a new one is ready.
    files = { ...files, "apps/worker.yaml": deployment({ replicas: 2, image: image2, ready: "2" }) };
    await publish(files);
    // A replica's readiness is read by the test itself (the probe's file), all replicas at once.
    // One scan is not an instant: a new replica read just before it turns ready and an old one
    // read just after the reconciler stopped it can meet in one scan. A real early removal shows
    // for the 2 s a new replica takes to be ready, so a dip counts only when two scans in a row
    // see it.
    const scans: Array<{ ready: number; names: string[] }> = [];
    const seen = new Set<string>();
    await waitFor(
      "the rollout to finish",
      async () => {
        const running = (await sandboxes("worker")).filter((s) => s.state === "SANDBOX_READY");
        for (const s of running) seen.add(s.metadata!.name);
        const o = await object("Deployment", "worker");
        const readyNames = await Promise.all(
          running.map(async (s) => {
            const [c] = await containersOf(s.id);
            if (c?.state !== "CONTAINER_RUNNING") return undefined;
            const r = await daemon.client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: c.id, cmd: ["test", "-f", "/tmp/ready"], timeout: "5" }).catch(() => undefined);
            return r?.exitCode === 0 ? s.metadata!.name : undefined;
          }),
        );
        const names = readyNames.filter((n): n is string => n !== undefined);
        scans.push({ ready: names.length, names });
        return o?.sync === "Synced" && o.health === "Healthy" && running.every((s) => !oldNames.includes(s.metadata!.name)) && running.length === 2;
      },
      60_000,
      150,
    );
    const dips = scans.slice(1).filter((s, i) => s.ready < 2 && scans[i]!.ready < 2);
    assert.deepEqual(dips, [], `ready replicas stayed below 2 for two scans in a row (of ${scans.length})`);
    assert.ok([...seen].filter((n) => !oldNames.includes(n)).length === 2);
  });

  test("SIGKILL of the daemon mid-apply, then a restart, converges without duplicates", async () => {
    const pods = Array.from({ length: 4 }, (_, i) => simplePod(`batch-${i}`));
    files = { ...files, "batch.yaml": pods.join("---\n") };
    await publish(files);
    await waitFor("the first batch pod being made", async () => (await sandboxes("batch")).length > 0, 10_000, 10);
    await daemon.kill();
    await daemon.restart();
    api = JSON.parse(await readFile(join(daemon.state, "daemon.json"), "utf8")).http;
    for (let i = 0; i < 4; i++) await healthy("Pod", `batch-${i}`);
    const all = await sandboxes("batch");
    const names = all.map((s) => s.metadata!.name).sort();
    assert.deepEqual(names, ["batch-0", "batch-1", "batch-2", "batch-3"], "one sandbox per pod");
    for (const s of all) {
      const cs = (await containersOf(s.id)).filter((c) => c.state === "CONTAINER_RUNNING");
      assert.equal(cs.length, 1, `${s.metadata!.name} runs one container`);
    }
    await healthy("Pod", "web");
    await healthy("Deployment", "worker");
    delete files["batch.yaml"];
    await publish(files);
    await waitFor("batch pruned", async () => (await sandboxes("batch")).length === 0);
  });
});
