// The dashboard proven on real data: Debian's Prometheus scrapes a real `berth serve` running the
// example manifests (with its own local registry) every second while the test pulls an image and
// churns a pod; then every panel of deploy/grafana/berth.json is evaluated through Prometheus'
// query API, with the dashboard's variables substituted, and each must give series, not errors.
// The scrape is `up`, and promtool finds nothing to say about the exposition.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, REPO, type TestDaemon } from "../support/daemon";
import { hostNetworkSnapshot, type HostNetworkSnapshot, restoreHostNetwork } from "../support/host-network";
import { forceClean, stopAndRemovePods } from "../support/pods";
import { freePort } from "../support/registry";
import { cgroupDirsBelowSelf } from "../support/runtime-pair";

const BRIDGE = `bo${process.pid % 100000}`;
const SUBNET = `10.83.${process.pid % 250}.0/24`;
const CGROUP_ROOT = `berth-test-observability-${process.pid}`;

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

describe("observability: the Grafana dashboard against a real Prometheus", () => {
  let work: string;
  let daemon: TestDaemon;
  let net: HostNetworkSnapshot;
  let prometheus: ChildProcess | undefined;
  let promAddr: string;
  let metricsAddr: string;

  before(async () => {
    net = hostNetworkSnapshot();
    work = await mkdtemp(join(tmpdir(), "berth-observability-"));
    // The example folder as the README runs it, on a free host port.
    const manifests = join(work, "manifests");
    cpSync(join(REPO, "manifests"), manifests, { recursive: true });
    const web = join(manifests, "web.yaml");
    writeFileSync(web, readFileSync(web, "utf8").replace("hostPort: 8080", `hostPort: ${await freePort()}`));
    daemon = await startDaemon({
      dir: join(work, "daemon"),
      args: ["--local-registry", "--manifests", manifests],
      config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: SUBNET } },
    });
    metricsAddr = JSON.parse(await readFile(join(daemon.state, "daemon.json"), "utf8")).http;
    promAddr = `127.0.0.1:${await freePort()}`;
    const config = join(work, "prometheus.yml");
    writeFileSync(config, JSON.stringify({ global: { scrape_interval: "1s", evaluation_interval: "1s" }, scrape_configs: [{ job_name: "berth", static_configs: [{ targets: [metricsAddr] }] }] }));
    prometheus = spawn("prometheus", [`--config.file=${config}`, `--storage.tsdb.path=${join(work, "tsdb")}`, `--web.listen-address=${promAddr}`, "--log.level=warn"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    prometheus.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://${promAddr}/-/ready`).then((r) => r.ok).catch(() => false);
      if (ok) break;
      if (i > 300 || prometheus.exitCode !== null) throw new Error(`prometheus did not come up: ${err.slice(-500)}`);
      await sleep(100);
    }
  });

  after(async () => {
    try {
      if (prometheus && prometheus.exitCode === null) {
        const exited = new Promise((r) => prometheus!.once("exit", r));
        process.kill(prometheus.pid!, "SIGTERM");
        await exited;
      }
      if (daemon) await stopAndRemovePods(daemon, { dir: join(work, "daemon"), config: { cgroupRoot: CGROUP_ROOT, cni: { confDir: join(work, "cni"), bridge: BRIDGE, subnet: SUBNET } } });
    } finally {
      const leftovers = work ? await forceClean(work, cgroupDirsBelowSelf(CGROUP_ROOT)) : [];
      restoreHostNetwork(net, BRIDGE);
      if (work) await rm(work, { recursive: true, force: true });
      assert.deepEqual(leftovers, [], "the daemon removed everything itself");
    }
  });

  async function query(expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
    const res = await fetch(`http://${promAddr}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  }

  test("every panel of the dashboard gives series on real data, the scrape is up, and promtool is silent", async () => {
    // Something for every row: the example pods converge, a pull, a pod churned through CRI.
    const status = async () => JSON.parse((await daemon.cli(["status", "-o", "json"])).stdout) as { objects: Array<{ health: string }> };
    for (let i = 0; i < 300 && !(await status()).objects.every((o) => o.health === "Healthy"); i++) await sleep(100);
    const pulled = await daemon.cli(["pull", "busybox:latest"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const podFile = join(work, "pod.yaml");
    const ctrFile = join(work, "ctr.yaml");
    writeFileSync(podFile, JSON.stringify({ metadata: { name: "churn", namespace: "test", uid: "churn-1" }, log_directory: join(work, "logs") }));
    writeFileSync(ctrFile, JSON.stringify({ metadata: { name: "c" }, image: { image: "busybox:latest" }, command: ["sh", "-c", "echo hi"], log_path: "c.log" }));
    const churn = await daemon.cli(["run-pod", podFile, ctrFile]);
    assert.equal(churn.code, 0, churn.stderr);
    await sleep(1000);
    assert.equal((await daemon.cli(["rmp", "-f", "churn"])).code, 0);
    // rate() needs two scrapes after the change: wait for a few more whatever the start-up took.
    const scrapes = async () => Number((await query('count_over_time(up{job="berth"}[5m])')).data?.result.map((r) => (r as { value: [number, string] }).value[1])[0] ?? 0);
    const seen = await scrapes();
    for (let i = 0; i < 200 && (await scrapes()) < Math.max(seen + 4, 8); i++) await sleep(100);

    const up = await query('up{job="berth"}');
    assert.equal(up.status, "success");
    assert.deepEqual((up.data!.result as Array<{ value: [number, string] }>).map((r) => r.value[1]), ["1"]);

    const dashboard = JSON.parse(readFileSync(join(REPO, "deploy", "grafana", "berth.json"), "utf8")) as { panels: Panel[]; templating: { list: Array<{ name: string }> } };
    assert.deepEqual(
      dashboard.templating.list.map((v) => v.name),
      ["datasource", "namespace", "pod"],
    );
    const substitute = (expr: string) => expr.replaceAll("$__rate_interval", "5m").replaceAll("$namespace", ".*").replaceAll("$pod", ".*");
    const failures: string[] = [];
    let checked = 0;
    for (const p of dashboard.panels.filter((x) => x.type !== "row")) {
      for (const t of p.targets ?? []) {
        checked++;
        const r = await query(substitute(t.expr));
        if (r.status !== "success") failures.push(`${p.title}: ${r.error}`);
        else if (!r.data!.result.length) failures.push(`${p.title}: no series for ${t.expr}`);
      }
    }
    assert.ok(checked >= 30, `only ${checked} panel queries`);
    if (failures.length) failures.push(`(scrapes in the last 5 m: ${JSON.stringify((await query("count_over_time(up[5m])")).data?.result)})`);
    assert.deepEqual(failures, []);

    const exposition = await (await fetch(`http://${metricsAddr}/metrics`)).text();
    const lint = execFileSync("promtool", ["check", "metrics"], { input: exposition, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
    assert.equal(lint.trim(), "");
  });

  test("/healthz answers ok, and 503 with the reason once the CRI socket is gone; /api/v1/version names berth", async () => {
    const h = await fetch(`http://${metricsAddr}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(await h.text(), "ok\n");
    const v = (await (await fetch(`http://${metricsAddr}/api/v1/version`)).json()) as { version: string };
    assert.match(v.version, /^\d+\.\d+\.\d+/);
    // Without its socket, kubelet cannot reach the runtime: /healthz says so. (Last: the daemon is
    // stopped after this.)
    await unlink(daemon.socket);
    const down = await fetch(`http://${metricsAddr}/healthz`);
    assert.equal(down.status, 503);
    assert.match(await down.text(), /CRI socket .* does not answer/);
  });
});
