// `berth diff` and `berth apply`: the reconciler in remote mode, through berth's own CRI socket
// (a daemon without --manifests). What diff announces is what apply then does.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type * as cri from "../../runtime/api/cri-v1";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { hostNetworkSnapshot, type HostNetworkSnapshot, restoreHostNetwork } from "../support/host-network";
import { forceClean, removeAllPods } from "../support/pods";
import { startRegistry } from "../support/registry";
import { cgroupDirsBelowSelf } from "../support/runtime-pair";
import { buildTestImages, pushLayout } from "../support/test-images";

const BRIDGE = `ba${process.pid % 100000}`;
const SUBNET = `10.86.${process.pid % 250}.0/24`;
const CGROUP_ROOT = `berth-test-apply-${process.pid}`;

describe("berth diff and berth apply through the CRI socket", () => {
  let work: string;
  let daemon: TestDaemon;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let net: HostNetworkSnapshot;
  let image: string;
  let image2: string;
  let dir: string;

  const pod = (name: string, img: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${img}
      command: ["sleep", "3600"]
`;
  const deployment = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: d }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: d } }
  template:
    metadata: { labels: { app: d } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: c
          image: ${image}
          command: ["sleep", "3600"]
`;
  async function write(files: Record<string, string | undefined>): Promise<void> {
    for (const [n, t] of Object.entries(files)) {
      if (t === undefined) await rm(join(dir, n), { force: true });
      else await writeFile(join(dir, n), t);
    }
  }
  async function names(): Promise<Map<string, string>> {
    const { items } = await daemon.client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
    return new Map(items.map((s) => [s.metadata!.name, s.id]));
  }
  /** The pod names a diff announces, by action. */
  function announced(diff: string, action: "create" | "replace" | "delete"): string[] {
    const re = action === "replace" ? /^~ replace \S+ {2}pod \S+ -> (\S+)$/gm : new RegExp(`^[+-] ${action} +\\S+ {2}pod (\\S+)`, "gm");
    return [...diff.matchAll(re)].map((m) => m[1]!).sort();
  }

  before(async () => {
    net = hostNetworkSnapshot();
    work = await mkdtemp(join(tmpdir(), "berth-apply-"));
    registry = await startRegistry();
    const images = await buildTestImages(join(work, "layouts"));
    await pushLayout(images.busybox.layout, images.busybox.tag, registry.host, images.busybox.repo);
    await pushLayout(images.busybox.layout, images.busybox.tag, registry.host, `${images.busybox.repo}-two`);
    image = `${registry.host}/${images.busybox.repo}:${images.busybox.tag}`;
    image2 = `${registry.host}/${images.busybox.repo}-two:${images.busybox.tag}`;
    dir = join(work, "folder");
    await mkdir(dir, { recursive: true });
    daemon = await startDaemon({
      dir: join(work, "daemon"),
      insecureRegistries: [registry.host],
      config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: SUBNET } },
    });
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

  test("diff announces creates, a replace with its changed field and deletes; apply then does exactly that", async () => {
    await write({ "a.yaml": pod("a", image), "d.yaml": deployment(2) });
    let diff = await daemon.cli(["diff", dir]);
    assert.equal(diff.code, 0, diff.stderr);
    const creates = announced(diff.stdout, "create");
    assert.equal(creates.length, 3, diff.stdout);
    assert.ok(creates.includes("a"));
    assert.deepEqual(await names(), new Map(), "diff touched nothing");
    let applied = await daemon.cli(["apply", "--timeout", "60", dir]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /Pod\/default\/a: Synced Healthy/);
    assert.deepEqual([...(await names()).keys()].sort(), creates);

    const before = await names();
    await write({ "a.yaml": pod("a", image2), "d.yaml": deployment(1) });
    diff = await daemon.cli(["diff", dir]);
    assert.equal(diff.code, 0, diff.stderr);
    assert.deepEqual(announced(diff.stdout, "replace"), ["a"]);
    assert.match(diff.stdout, /containers\[c\]\.image: ".*:v1" -> ".*-two:v1"/);
    const deletes = announced(diff.stdout, "delete");
    assert.equal(deletes.length, 1);
    applied = await daemon.cli(["apply", "--timeout", "60", dir]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const now = await names();
    assert.notEqual(now.get("a"), before.get("a"), "a was replaced");
    assert.ok(!now.has(deletes[0]!), `${deletes[0]} was deleted`);
    assert.equal(now.size, 2);

    await write({ "d.yaml": undefined });
    diff = await daemon.cli(["diff", dir]);
    assert.match(diff.stdout, /^- delete {2}Deployment\/default\/d {2}pod \S+ \(no longer in the folder\)$/m);
    applied = await daemon.cli(["apply", dir]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual([...(await names()).keys()], ["a"]);
    diff = await daemon.cli(["diff", dir]);
    assert.equal(diff.stdout, "no changes\n");
  });

  test("a broken folder: diff and apply exit 1 naming file, line and column, and nothing running is touched", async () => {
    const before = await names();
    await write({ "a.yaml": pod("a", image2).replace("image:", "image: [oops") });
    const diff = await daemon.cli(["diff", dir]);
    assert.equal(diff.code, 1);
    assert.match(diff.stderr, /^a\.yaml:\d+:\d+: /m);
    assert.doesNotMatch(diff.stdout, /delete/, "the broken file's pod is not pruned");
    const applied = await daemon.cli(["apply", "--timeout", "5", dir]);
    assert.equal(applied.code, 1);
    assert.deepEqual(await names(), before);
    await write({ "a.yaml": undefined });
  });
});
