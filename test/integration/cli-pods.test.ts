// The debugging CLI against a real daemon: a pod from crictl-style YAML files, listed, its logs
// read, a command run in it, then stopped and removed, by id prefix and by name.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { hostNetworkSnapshot, type HostNetworkSnapshot, restoreHostNetwork } from "../support/host-network";
import { forceClean, removeAllPods } from "../support/pods";
import { startRegistry } from "../support/registry";
import { cgroupDirsBelowSelf } from "../support/runtime-pair";
import { buildTestImages, pushLayout } from "../support/test-images";

const BRIDGE = `bc${process.pid % 100000}`;
const CGROUP_ROOT = `berth-test-cli-${process.pid}`;

describe("berth pods, ps, logs, inspect, exec-sync, stop, rm, rmp, run-pod", () => {
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let daemon: TestDaemon;
  let work: string;
  let image: string;
  let net: HostNetworkSnapshot;

  before(async () => {
    net = hostNetworkSnapshot();
    work = await mkdtemp(join(tmpdir(), "berth-cli-pods-"));
    registry = await startRegistry();
    const images = await buildTestImages(join(work, "layouts"));
    await pushLayout(images.busybox.layout, images.busybox.tag, registry.host, images.busybox.repo);
    image = `${registry.host}/${images.busybox.repo}:${images.busybox.tag}`;
    daemon = await startDaemon({
      dir: join(work, "daemon"),
      insecureRegistries: [registry.host],
      config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: `10.90.${process.pid % 250}.0/24` } },
    });
  });

  after(async () => {
    try {
      if (daemon) await removeAllPods(daemon.client).catch(() => {});
      await daemon?.stop();
    } finally {
      if (work) await forceClean(work, cgroupDirsBelowSelf(CGROUP_ROOT));
      restoreHostNetwork(net, BRIDGE);
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    }
  });

  test("a pod from snake_case YAML runs; pods, ps, logs, exec-sync and inspect show it; stop, rm and rmp take it away", async () => {
    await writeFile(
      join(work, "pod.yaml"),
      `metadata:\n  name: clipod\n  namespace: default\n  uid: cli-${process.pid}\nlog_directory: ${join(work, "logs")}\nlabels:\n  app.kubernetes.io/name: clipod\nlinux:\n  security_context:\n    namespace_options:\n      network: POD\n`,
    );
    await writeFile(join(work, "pod2.yaml"), `metadata:\n  name: clipod2\n  namespace: default\n  uid: cli2-${process.pid}\n`);
    await writeFile(join(work, "ctr.yaml"), `metadata:\n  name: talker\nimage:\n  image: ${image}\ncommand: ["sh", "-c", "echo to-stdout $GREETING; echo to-stderr >&2; sleep 600"]\nenvs:\n  - key: GREETING\n    value: hello\nlog_path: talker.log\n`);
    const runp = await daemon.cli(["run-pod", "--pull", join(work, "pod.yaml"), join(work, "ctr.yaml")]);
    assert.equal(runp.code, 0, runp.stderr);
    const [podId, ctrId] = runp.stdout.trim().split("\n");
    assert.match(podId!, /^[0-9a-f]{64}$/);
    assert.match(ctrId!, /^[0-9a-f]{64}$/);

    const pods = await daemon.cli(["pods"]);
    assert.match(pods.stdout, /^POD ID\s+CREATED\s+STATE\s+NAME\s+NAMESPACE\s+ATTEMPT\s+RUNTIME/);
    assert.match(pods.stdout, new RegExp(`${podId!.slice(0, 13)}.*Ready\\s+clipod\\s+default`));
    const ps = await daemon.cli(["ps"]);
    assert.match(ps.stdout, new RegExp(`${ctrId!.slice(0, 13)}.*Running\\s+talker\\s+0\\s+${podId!.slice(0, 13)}\\s+clipod`));
    assert.equal((await daemon.cli(["ps", "-q", "--pod", "clipod"])).stdout.trim(), ctrId);

    let logs = await daemon.cli(["logs", "talker"]);
    for (let i = 0; i < 20 && !logs.stdout; i++) {
      await sleep(100);
      logs = await daemon.cli(["logs", "talker"]);
    }
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, "to-stdout hello\n", "env values from the file reach the container");
    assert.equal(logs.stderr, "to-stderr\n");

    const ex = await daemon.cli(["exec-sync", ctrId!.slice(0, 8), "--", "sh", "-c", "echo inside; exit 4"]);
    assert.equal(ex.code, 4);
    assert.equal(ex.stdout, "inside\n");

    const inspect = JSON.parse((await daemon.cli(["inspect", "talker"])).stdout) as { status: { state: string }; info: { info: { pid: number } } };
    assert.equal(inspect.status.state, "CONTAINER_RUNNING");
    assert.ok(inspect.info.info.pid > 0);
    const inspectPod = JSON.parse((await daemon.cli(["inspect", podId!.slice(0, 10)])).stdout) as { status: { state: string } };
    assert.equal(inspectPod.status.state, "SANDBOX_READY");

    // A container without a log path still logs (to berth's own file), and `berth logs` reads it.
    await writeFile(join(work, "quiet.yaml"), `metadata:\n  name: nolog\nimage:\n  image: ${image}\ncommand: ["sh", "-c", "echo unlogged-but-kept; sleep 600"]\n`);
    const second = await daemon.cli(["run-pod", join(work, "pod2.yaml"), join(work, "quiet.yaml")]);
    assert.equal(second.code, 0, second.stderr);
    let quiet = "";
    for (let i = 0; i < 20 && !quiet; i++) {
      quiet = (await daemon.cli(["logs", "nolog"])).stdout;
      if (!quiet) await sleep(100);
    }
    assert.equal(quiet, "unlogged-but-kept\n");
    assert.equal((await daemon.cli(["rmp", "-f", "clipod2"])).code, 0);

    const refused = await daemon.cli(["rm", "talker"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is running: stop it first or use -f/);
    assert.equal((await daemon.cli(["stop", "-t", "0", "talker"])).code, 0);
    assert.match((await daemon.cli(["ps", "-a"])).stdout, /Exited\s+talker/);
    assert.equal((await daemon.cli(["rm", "talker"])).code, 0);
    assert.equal((await daemon.cli(["ps", "-a", "-q"])).stdout.trim(), "");
    assert.equal((await daemon.cli(["stopp", "clipod"])).code, 0);
    assert.equal((await daemon.cli(["rmp", "clipod"])).code, 0);
    assert.equal((await daemon.cli(["pods", "-q"])).stdout.trim(), "");
    const missing = await daemon.cli(["inspect", "nothing-like-this"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no container or pod "nothing-like-this"/);
  });
});
