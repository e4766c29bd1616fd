// Pod network logic without the kernel: which CNI configuration is used and how plugins are
// called, what a result means, berth's own default network, and namespace pinning that always
// returns the daemon's thread to its own namespaces.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLONE } from "../../runtime/linux/types";
import { CniNetwork } from "../../runtime/network/cni";
import { ipsOf } from "../../runtime/network/cni-result";
import { loadNetworkConfig } from "../../runtime/network/conflist";
import { cniArgs } from "../../runtime/network/plugin-exec";
import { defaultConflist, gatewayOf } from "../../runtime/network/default-network";
import { pinNamespaces } from "../../runtime/network/namespaces";
import { createLogger } from "../../runtime/log";
import { Code } from "../../runtime/errors";
import { FakeSyscalls } from "../support/fake-syscalls";

const quiet = createLogger({ level: "error", out: { write: () => true } as unknown as NodeJS.WritableStream });

describe("CNI configuration", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-cni-unit-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the first .conflist/.conf/.json in lexical order is used; a single-plugin .conf is a list of one", async () => {
    await writeFile(join(dir, "20-b.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "b", plugins: [{ type: "bridge" }] }));
    await writeFile(join(dir, "10-a.conf"), JSON.stringify({ cniVersion: "0.4.0", name: "a", type: "ptp" }));
    await writeFile(join(dir, "README"), "not a config");
    const conf = loadNetworkConfig(dir)!;
    assert.equal(conf.name, "a");
    assert.deepEqual(conf.plugins.map((p) => p.type), ["ptp"]);
  });

  test("a configuration that is not JSON is an error naming the file", async () => {
    const bad = await mkdtemp(join(tmpdir(), "berth-cni-bad-"));
    try {
      await writeFile(join(bad, "00-broken.conflist"), "{ nope");
      assert.throws(() => loadNetworkConfig(bad), (e: { code: number; message: string }) => e.code === Code.FAILED_PRECONDITION && e.message.includes("00-broken.conflist"));
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });

  test("NetworkReady is false, naming what is missing; with no conf it is ready when berth's default network's plugins are there", async () => {
    const empty = await mkdtemp(join(tmpdir(), "berth-cni-empty-"));
    try {
      const none = await new CniNetwork({ confDir: empty, binDirs: ["/nonexistent"], defaults: { bridge: "x", subnet: "10.0.0.0/24", ipamDataDir: empty }, log: quiet }).status();
      assert.deepEqual([none.ready, none.reason], [false, "NetworkPluginNotReady"]);
      assert.match(none.message, /bridge, host-local, portmap, loopback not found in \/nonexistent \(berth's default network/);
      const lazily = await new CniNetwork({ confDir: empty, binDirs: ["/usr/lib/cni"], defaults: { bridge: "x", subnet: "10.0.0.0/24", ipamDataDir: empty }, log: quiet }).status();
      assert.equal(lazily.ready, true, "berth writes its default network at the first pod");
      const noBins = await new CniNetwork({ confDir: dir, binDirs: ["/nonexistent"], defaults: { bridge: "x", subnet: "10.0.0.0/24", ipamDataDir: empty }, log: quiet }).status();
      assert.match(noBins.message, /ptp, loopback not found in \/nonexistent/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test("CNI_ARGS carries the pod's identity as kubelet's runtimes pass it", () => {
    assert.equal(
      cniArgs({ podId: "abc", name: "web", namespace: "prod", uid: "u-1", netns: "/x", portMappings: [] }),
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1",
    );
  });

  test("the pod's IPs come from a 1.0 or 0.4 result, without prefix length", () => {
    assert.deepEqual(ipsOf({ cniVersion: "1.0.0", ips: [{ address: "10.88.0.5/16", gateway: "10.88.0.1" }, { address: "fd00::5/64" }] }), ["10.88.0.5", "fd00::5"]);
    assert.deepEqual(ipsOf({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.1.2.3/24" }] }), ["10.1.2.3"]);
    assert.deepEqual(ipsOf(undefined), []);
  });
});

describe("berth's default network", () => {
  test("the bridge's address is the subnet's first host; a subnet with no room is refused", () => {
    assert.equal(gatewayOf("10.88.0.0/16"), "10.88.0.1");
    assert.equal(gatewayOf("10.89.7.0/24"), "10.89.7.1");
    assert.equal(gatewayOf("192.168.5.77/24"), "192.168.5.1");
    assert.throws(() => gatewayOf("10.0.0.0/31"), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
    assert.throws(() => gatewayOf("fd00::/64"));
  });

  test("no gateway mode and no masquerade (nothing turns on ip_forward); portmap with SNAT for localhost hostPorts", () => {
    const conf = defaultConflist({ bridge: "berth0", subnet: "10.88.0.0/16", ipamDataDir: "/var/lib/berth/cni/networks" }) as { plugins: Array<Record<string, unknown>> };
    const [bridge, portmap] = conf.plugins;
    assert.equal(bridge!.isGateway, false);
    assert.equal(bridge!.ipMasq, false);
    assert.deepEqual((bridge!.ipam as Record<string, unknown>).dataDir, "/var/lib/berth/cni/networks");
    assert.equal(portmap!.type, "portmap");
    assert.equal(portmap!.snat, true);
  });
});

describe("pinning a pod's namespaces", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-pin-unit-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("unshare, hostname, one bind mount per kind, then setns back to every saved namespace", () => {
    const sys = new FakeSyscalls();
    const pins = pinNamespaces(sys, dir, "pod1", ["net", "ipc", "uts"], { hostname: "web" });
    assert.deepEqual(Object.keys(pins).sort(), ["ipc", "net", "uts"]);
    const order = sys.calls.map((c) => c.call).filter((c) => ["unshare", "sethostname", "mount", "setns"].includes(c));
    assert.deepEqual(order, ["unshare", "sethostname", "mount", "mount", "mount", "setns", "setns", "setns"]);
    assert.equal(sys.callsOf("unshare")[0]![0], CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS);
    assert.deepEqual(sys.callsOf("sethostname")[0], ["web"]);
  });

  test("a failing step still returns the thread to the daemon's namespaces and removes what was pinned", () => {
    const sys = new FakeSyscalls();
    sys.failOn("mount", "EPERM", { match: (args) => String(args[1]).includes("/uts/") });
    assert.throws(() => pinNamespaces(sys, dir, "pod2", ["net", "uts"]), /cannot make its net\/uts namespaces/);
    assert.equal(sys.callsOf("setns").length, 2, "back in both saved namespaces");
    assert.ok(sys.callsOf("umount2").length >= 1, "the net pin made before the failure is unmounted");
  });
});
