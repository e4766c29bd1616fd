// How CniNetwork drives a network configuration list, with shell-script plugins in place of the
// real ones: the order of ADD and DEL, what each plugin is given (environment, stdin, prevResult,
// runtimeConfig), what a failure turns into, and what NetworkReady says.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { silentLogger } from "../../runtime/log";
import { CniNetwork } from "../../runtime/network/cni";
import type { PodNetworkRequest } from "../../runtime/network/types";
import { FakePlugins } from "../support/network-fake-plugins";

const POD_ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/** A namespace file that exists (the test's own): the fake plugins never enter it. */
const NETNS = "/proc/self/ns/net";

const IFACE_RESULT = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "br-fake" },
    { name: "veth1234", mac: "aa:bb:cc:00:00:01" },
    { name: "eth0", mac: "aa:bb:cc:00:00:02", sandbox: NETNS },
  ],
  ips: [
    { address: "fd00::7/64", interface: 2 },
    { address: "10.1.0.7/24", gateway: "10.1.0.1", interface: 2 },
  ],
};
const CHAINED_RESULT = { ...IFACE_RESULT, dns: { nameservers: ["10.1.0.1"] } };

function request(over: Partial<PodNetworkRequest> = {}): PodNetworkRequest {
  return {
    podId: POD_ID,
    name: "web",
    namespace: "prod",
    uid: "uid-1",
    netns: NETNS,
    portMappings: [
      { protocol: "tcp", containerPort: 80, hostPort: 8080, hostIp: "127.0.0.1" },
      { protocol: "udp", containerPort: 53, hostPort: 0, hostIp: "" },
    ],
    ...over,
  };
}

function conflist(over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: "unit",
    plugins: [
      { type: "fake-iface", ipam: { type: "fake-ipam", subnet: "10.1.0.0/24" }, mtu: 1400 },
      { type: "fake-chain", capabilities: { portMappings: true, bandwidth: true } },
    ],
    ...over,
  });
}

describe("CniNetwork with fake plugins", () => {
  let plugins: FakePlugins;
  let confDir: string;
  let network: CniNetwork;

  beforeEach(() => {
    plugins = new FakePlugins(["fake-iface", "fake-ipam", "fake-chain", "loopback"]);
    plugins.result("fake-iface", IFACE_RESULT);
    plugins.result("fake-chain", CHAINED_RESULT);
    confDir = mkdtempSync(join(tmpdir(), "berth-cni-conf-"));
    writeFileSync(join(confDir, "50-unit.conflist"), conflist());
    network = new CniNetwork({
      confDir,
      binDirs: ["/nonexistent-first", plugins.binDir],
      defaults: { bridge: "unused0", subnet: "10.250.0.0/24", ipamDataDir: join(confDir, "ipam") },
      log: silentLogger,
      env: { PATH: "/usr/bin:/bin", HTTP_PROXY: "http://proxy:3128", CNI_COMMAND: "stale" },
      pluginTimeoutMs: 1_000,
    });
  });

  afterEach(() => {
    plugins.cleanup();
    rmSync(confDir, { recursive: true, force: true });
  });

  test("ADD runs loopback on lo, then each plugin on eth0 in order, each given the previous result; the pod's IPs come from the last, IPv4 first", async () => {
    const net = await network.setUp(request());
    assert.deepEqual(plugins.sequence(), ["ADD loopback lo", "ADD fake-iface eth0", "ADD fake-chain eth0"]);
    assert.deepEqual(net.ips, ["10.1.0.7", "fd00::7"]);
    assert.equal(net.interfaceName, "eth0");
    const [lo, iface, chain] = plugins.calls();
    assert.deepEqual(lo!.stdin, { type: "loopback", name: "cni-loopback", cniVersion: "0.3.1" });
    assert.equal(iface!.stdin.prevResult, undefined, "the first plugin gets no prevResult");
    assert.deepEqual(chain!.stdin.prevResult, IFACE_RESULT);
    assert.deepEqual((net.result as { result: unknown }).result, CHAINED_RESULT, "the stored result is the last plugin's");
  });

  test("each plugin gets the invocation in CNI_* variables, on top of the daemon's environment", async () => {
    await network.setUp(request());
    const env = plugins.calls()[1]!.env;
    assert.equal(env.CNI_COMMAND, "ADD", "a stale CNI_COMMAND of the daemon's environment is replaced");
    assert.equal(env.CNI_CONTAINERID, POD_ID);
    assert.equal(env.CNI_NETNS, NETNS);
    assert.equal(env.CNI_IFNAME, "eth0");
    assert.equal(env.CNI_ARGS, `IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=${POD_ID};K8S_POD_UID=uid-1`);
    assert.equal(env.CNI_PATH, `/nonexistent-first:${plugins.binDir}`);
    assert.equal(env.HTTP_PROXY, "http://proxy:3128");
  });

  test("stdin is the plugin's configuration with the list's name and version, runtimeConfig only for declared capabilities, no capabilities key", async () => {
    await network.setUp(request());
    const [, iface, chain] = plugins.calls();
    assert.deepEqual(iface!.stdin, { type: "fake-iface", ipam: { type: "fake-ipam", subnet: "10.1.0.0/24" }, mtu: 1400, name: "unit", cniVersion: "1.0.0" });
    assert.deepEqual(chain!.stdin.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "127.0.0.1" }] }, "hostPort 0 is no mapping; bandwidth was not offered");
    assert.equal(chain!.stdin.capabilities, undefined);
  });

  test("DEL runs the stored network in reverse order with the final ADD result and the ADD's port mappings, then loopback, whatever the conf dir says now", async () => {
    const net = await network.setUp(request());
    writeFileSync(join(confDir, "00-other.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "other", plugins: [{ type: "fake-ipam" }] }));
    plugins.forget();
    await network.tearDown(request({ portMappings: [] }), net.result);
    assert.deepEqual(plugins.sequence(), ["DEL fake-chain eth0", "DEL fake-iface eth0", "DEL loopback lo"]);
    const [chain, iface, lo] = plugins.calls();
    assert.deepEqual(chain!.stdin.prevResult, CHAINED_RESULT);
    assert.deepEqual(iface!.stdin.prevResult, CHAINED_RESULT, "every DEL gets the final ADD result");
    assert.deepEqual(chain!.stdin.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "127.0.0.1" }] });
    assert.equal(chain!.stdin.name, "unit");
    assert.equal(lo!.stdin.prevResult, undefined);
  });

  test("DEL of a pod whose namespace is gone passes an empty CNI_NETNS, and can be repeated", async () => {
    const net = await network.setUp(request());
    const gone = join(confDir, "not-a-namespace");
    writeFileSync(gone, "");
    plugins.forget();
    await network.tearDown(request({ netns: gone }), net.result);
    await network.tearDown(request({ netns: join(confDir, "missing") }), net.result);
    assert.equal(plugins.calls().length, 6);
    for (const call of plugins.calls()) assert.equal(call.env.CNI_NETNS, "", `${call.plugin}'s CNI_NETNS`);
  });

  test("DEL without a stored result (ADD never finished) uses the current network and no prevResult", async () => {
    await network.tearDown(request());
    assert.deepEqual(plugins.sequence(), ["DEL fake-chain eth0", "DEL fake-iface eth0", "DEL loopback lo"]);
    for (const call of plugins.calls()) assert.equal(call.stdin.prevResult, undefined);
  });

  test("a network older than CNI 0.4.0 gets no prevResult on DEL, and CHECK is not run for it", async () => {
    writeFileSync(join(confDir, "50-unit.conflist"), conflist({ cniVersion: "0.3.1" }));
    const net = await network.setUp(request());
    plugins.forget();
    await network.tearDown(request(), net.result);
    for (const call of plugins.calls()) assert.equal(call.stdin.prevResult, undefined);
    plugins.forget();
    await network.check(request(), net.result);
    assert.deepEqual(plugins.calls(), []);
  });

  test("CHECK runs every plugin in order with the stored result", async () => {
    const net = await network.setUp(request());
    plugins.forget();
    await network.check(request(), net.result);
    assert.deepEqual(plugins.sequence(), ["CHECK fake-iface eth0", "CHECK fake-chain eth0"]);
    assert.deepEqual(plugins.calls()[0]!.stdin.prevResult, CHAINED_RESULT);
  });

  test("a failed ADD is undone by a DEL of every plugin, and the error names the pod, the plugin, the network and the plugin's own error", async () => {
    plugins.fail("fake-chain", "ADD", { code: 1, stdout: JSON.stringify({ cniVersion: "1.0.0", code: 7, msg: "invalid config", details: "portMappings: hostPort taken" }) });
    // A plugin whose ADD failed may fail its DEL too; the others are still asked.
    plugins.fail("fake-chain", "DEL", { code: 1, stderr: "nothing to delete" });
    await assert.rejects(network.setUp(request()), (err: { code: number; message: string }) => {
      assert.equal(err.code, Code.FAILED_PRECONDITION, "CNI code 7 is a configuration problem");
      assert.equal(err.message, `CNI ADD of pod prod/web (0123456789ab) failed in plugin "fake-chain" of network "unit": invalid config: portMappings: hostPort taken (CNI error code 7)`);
      return true;
    });
    assert.deepEqual(plugins.sequence(), ["ADD loopback lo", "ADD fake-iface eth0", "ADD fake-chain eth0", "DEL fake-chain eth0", "DEL fake-iface eth0", "DEL loopback lo"]);
    assert.deepEqual(plugins.calls()[4]!.stdin.prevResult, IFACE_RESULT, "the undo gets the last result there was");
  });

  test("a DEL that fails stops the teardown (the spec's order) and says which plugin failed with what it printed", async () => {
    const net = await network.setUp(request());
    plugins.forget();
    plugins.fail("fake-chain", "DEL", { code: 3, stderr: "iptables: lock held\nretry later" });
    await assert.rejects(network.tearDown(request(), net.result), (err: { code: number; message: string }) => {
      assert.equal(err.code, Code.INTERNAL);
      assert.match(err.message, /^CNI DEL of pod prod\/web \(0123456789ab\) failed in plugin "fake-chain" of network "unit": the plugin exited with code 3: iptables: lock held \| retry later$/);
      return true;
    });
    assert.deepEqual(plugins.sequence(), ["DEL fake-chain eth0"]);
  });

  test("a plugin that does not finish is killed at the timeout and reported as such", async () => {
    plugins.fail("fake-iface", "ADD", { hang: true });
    const started = Date.now();
    await assert.rejects(network.setUp(request()), (err: { code: number; message: string }) => {
      assert.equal(err.code, Code.DEADLINE_EXCEEDED);
      assert.match(err.message, /plugin "fake-iface" .*did not finish within 1 s and was killed/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000);
  });

  test("a plugin that exits 0 without a result object fails the ADD", async () => {
    plugins.result("fake-chain", "not a result");
    await assert.rejects(network.setUp(request()), /plugin "fake-chain" of network "unit": it exited 0 but printed no result object: "not a result"/);
  });

  test("requests CNI cannot carry are refused before any plugin runs", async () => {
    await assert.rejects(network.setUp(request({ podId: "../x" })), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
    await assert.rejects(network.setUp(request({ netns: join(confDir, "50-unit.conflist") })), (e: { code: number; message: string }) => e.code === Code.FAILED_PRECONDITION && /not a mounted namespace file/.test(e.message));
    await assert.rejects(network.setUp(request({ portMappings: [{ protocol: "tcp", containerPort: 0, hostPort: 80, hostIp: "" }] })), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
    await assert.rejects(network.setUp(request({ portMappings: [{ protocol: "icmp" as "tcp", containerPort: 1, hostPort: 80, hostIp: "" }] })), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
    assert.deepEqual(plugins.calls(), []);
  });

  test("NetworkReady names every missing binary, the delegated IPAM plugin included, and where it looked", async () => {
    assert.deepEqual(await network.status(), { ready: true, reason: "", message: "" });
    rmSync(join(plugins.binDir, "fake-ipam"));
    rmSync(join(plugins.binDir, "loopback"));
    const st = await network.status();
    assert.deepEqual([st.ready, st.reason], [false, "NetworkPluginNotReady"]);
    assert.equal(st.message, `CNI plugins fake-ipam, loopback not found in /nonexistent-first:${plugins.binDir} (network "unit" of ${join(confDir, "50-unit.conflist")})`);
  });

  test("NetworkReady is false, naming the file, when the first configuration cannot be used", async () => {
    writeFileSync(join(confDir, "10-broken.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "broken" }));
    const st = await network.status();
    assert.equal(st.ready, false);
    assert.match(st.message, /10-broken\.conf has no plugin "type"/);
  });

  test("a pod CIDR leaves a network berth did not write as it is", async () => {
    const before = readFileSync(join(confDir, "50-unit.conflist"), "utf8");
    await network.setPodCidr("10.77.0.0/16");
    assert.equal(readFileSync(join(confDir, "50-unit.conflist"), "utf8"), before);
    await assert.rejects(network.setPodCidr("fd00::/64"), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
  });
});
