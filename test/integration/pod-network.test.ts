// Pod networking against the real kernel and Debian's CNI plugins: namespaces pinned in-process,
// berth's default network on a bridge and subnet of this test's own, traffic from the host to
// pods, between pods and through a hostPort on 127.0.0.1, and DEL in the ways a pod service
// calls it. Talks only to loopback and to the namespaces it makes; the last test checks that
// nothing it made is left on the host, and after() removes it all when a test failed half-way.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { silentLogger } from "../../runtime/log";
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { CniNetwork } from "../../runtime/network/cni";
import { DEFAULT_CONFLIST_NAME } from "../../runtime/network/default-network";
import { pinNamespaces, unpinNamespaces } from "../../runtime/network/namespaces";
import type { PinnedNamespaces, PodNetworkRequest, PodNetworkResult } from "../../runtime/network/types";
import { assertInSubnet, NetworkFixture, tcpRead, tcpReadEventually, tool, waitFor } from "../support/network-fixture";

const CNI_BIN = "/usr/lib/cni";
const canRun = process.getuid?.() === 0 && existsSync(join(CNI_BIN, "bridge")) && existsSync("/bin/busybox");
const POD_PORT = 8080;

interface Pod {
  req: PodNetworkRequest;
  pins: PinnedNamespaces;
  net?: PodNetworkResult;
  server?: ChildProcess;
}

describe("pod network (real namespaces, bridge and CNI plugins)", { skip: !canRun && "needs root, /usr/lib/cni and /bin/busybox" }, () => {
  let fx: NetworkFixture;
  let network: CniNetwork;
  let hostPort: number;
  const pods = new Map<string, Pod>();

  function pin(name: string, hostnameOfPod = name): Pod {
    const podId = fx.newPodId();
    const pins = pinNamespaces(linuxSyscalls, fx.pinDir, podId, ["net", "ipc", "uts"], { hostname: hostnameOfPod });
    const pod: Pod = { req: { podId, name, namespace: "berth-test", uid: `uid-${name}`, netns: pins.net!, portMappings: [] }, pins };
    pods.set(name, pod);
    return pod;
  }

  async function join_(pod: Pod): Promise<PodNetworkResult> {
    pod.net = await network.setUp(pod.req);
    fx.trackResult(pod.net.result);
    return pod.net;
  }

  before(() => {
    fx = new NetworkFixture();
    hostPort = fx.freeHostPort();
    network = new CniNetwork({ confDir: fx.confDir, binDirs: [CNI_BIN], defaults: { bridge: fx.bridge, subnet: fx.subnet, ipamDataDir: fx.ipamDataDir }, log: silentLogger });
  });

  after(async () => {
    if (!fx) return;
    for (const pod of pods.values()) await network.tearDown(pod.req, pod.net?.result).catch(() => {});
    await fx.cleanup();
  });

  test("pinning makes a pod's net, ipc and uts namespaces without moving the daemon's thread; the uts pin has the pod's hostname", () => {
    const own = ["net", "ipc", "uts"].map((k) => readlinkSync(`/proc/self/ns/${k}`));
    const ownHostname = hostname();
    const a = pin("pod-a", "pod-a-host");
    assert.deepEqual(
      ["net", "ipc", "uts"].map((k) => readlinkSync(`/proc/self/ns/${k}`)),
      own,
      "the test process (the daemon here) is still in its own namespaces",
    );
    assert.equal(hostname(), ownHostname);
    assert.equal(tool("nsenter", [`--uts=${a.pins.uts}`, "hostname"]), "pod-a-host");
    for (const kind of ["net", "ipc"] as const) {
      const inPin = tool("nsenter", [`--${kind}=${a.pins[kind]}`, "readlink", `/proc/self/ns/${kind}`]);
      assert.match(inPin, new RegExp(`^${kind}:\\[\\d+\\]$`));
      assert.notEqual(inPin, readlinkSync(`/proc/self/ns/${kind}`), `the ${kind} pin holds a namespace of its own`);
    }
    const mounts = readFileSync("/proc/self/mountinfo", "utf8");
    for (const path of Object.values(a.pins)) assert.ok(mounts.includes(` ${path} `), `${path} is a mount`);
  });

  test("the first pod writes berth's default network and joins it: an address in the test's subnet that the host reaches", async () => {
    const a = pods.get("pod-a")!;
    a.req.portMappings = [{ protocol: "tcp", containerPort: POD_PORT, hostPort, hostIp: "127.0.0.1" }];
    const net = await join_(a);
    assert.ok(existsSync(join(fx.confDir, DEFAULT_CONFLIST_NAME)), "berth wrote its conflist into the conf dir");
    assert.equal(net.interfaceName, "eth0");
    assert.equal(net.ips.length, 1);
    assertInSubnet(net.ips[0]!, fx.subnet);
    const bridge = JSON.parse(tool("ip", ["-j", "-4", "addr", "show", "dev", fx.bridge])) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
    assert.deepEqual(
      bridge[0]!.addr_info.map((i) => `${i.local}/${i.prefixlen}`),
      [`${fx.subnet.replace(/0\/24$/, "1")}/24`],
      "berth put the subnet's first address on the bridge",
    );
    assert.match(fx.inNetns(a.pins.net!, ["/bin/busybox", "ip", "-o", "link", "show", "lo"]), /state UNKNOWN|UP/, "loopback is up in the pod");
    a.server = fx.startServer(a.pins.net!, POD_PORT, "hello from pod-a");
    assert.equal(await tcpReadEventually(net.ips[0]!, POD_PORT, "hello from pod-a"), "hello from pod-a");
  });

  test("a hostPort on 127.0.0.1 reaches the pod through portmap, and ip_forward stays as it was", async () => {
    const forward = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
    assert.equal(await tcpReadEventually("127.0.0.1", hostPort, "hello from pod-a"), "hello from pod-a");
    assert.equal(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(), forward);
    assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${fx.bridge}/route_localnet`, "utf8").trim(), "1", "portmap's snat needs route_localnet on the bridge");
  });

  test("two pods on the bridge reach each other", async () => {
    const b = pin("pod-b");
    await join_(b);
    const a = pods.get("pod-a")!;
    assert.equal(fx.inNetns(b.pins.net!, ["/bin/busybox", "nc", "-w", "3", a.net!.ips[0]!, String(POD_PORT)]), "hello from pod-a");
  });

  test("a pod cannot reach a service the host binds to 127.0.0.1 through the bridge, route_localnet notwithstanding", async () => {
    const server = createServer((s) => s.end("host-only secret\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      assert.equal(await tcpRead("127.0.0.1", port), "host-only secret", "the host service answers on loopback");
      // What CVE-2020-8558 describes: a neighbour on the bridge routes 127.0.0.1 to the host.
      const b = pods.get("pod-b")!;
      const gateway = fx.subnet.replace(/0\/24$/, "1");
      const script = [
        "set -e",
        "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet",
        "/bin/busybox ip rule add pref 10 to 127.0.0.1/32 lookup 100",
        "/bin/busybox ip rule add pref 20 lookup local",
        "/bin/busybox ip rule del pref 0",
        `/bin/busybox ip route add 127.0.0.1/32 via ${gateway} dev eth0 table 100`,
        `/bin/busybox timeout 3 /bin/busybox nc -w 2 127.0.0.1 ${port} </dev/null || echo unreachable`,
      ].join("\n");
      assert.equal(await fx.inNetnsAsync(b.pins.net!, ["/bin/busybox", "sh", "-c", script]), "unreachable");
    } finally {
      server.close();
    }
  });

  test("DEL removes the pod's veth and its hostPort rules, and a second DEL succeeds", async () => {
    const a = pods.get("pod-a")!;
    const portsBefore = fx.bridgePorts();
    assert.ok(fx.natRulesOfPods().some((r) => r.includes(a.req.podId)), "portmap made DNAT rules for pod-a");
    await network.tearDown(a.req, a.net!.result);
    assert.equal(fx.bridgePorts().length, portsBefore.length - 1, "pod-a's veth left the bridge");
    assert.deepEqual(
      fx.natRulesOfPods().filter((r) => r.includes(a.req.podId)),
      [],
    );
    assert.equal(await tcpRead("127.0.0.1", hostPort), "refused", "the hostPort is gone with the pod");
    await network.tearDown(a.req, a.net!.result);
    await fx.stopServer(a.server!);
    unpinNamespaces(linuxSyscalls, a.pins);
    unpinNamespaces(linuxSyscalls, a.pins);
    pods.delete("pod-a");
  });

  test("DEL succeeds after the pod's namespace pin is gone, and releases its address", async () => {
    const b = pods.get("pod-b")!;
    const lease = join(fx.ipamDataDir, "berth", b.net!.ips[0]!);
    assert.ok(existsSync(lease), "host-local leased the address");
    unpinNamespaces(linuxSyscalls, b.pins);
    await network.tearDown(b.req, b.net!.result);
    assert.ok(!existsSync(lease), "the lease is released");
    await network.tearDown(b.req);
    pods.delete("pod-b");
  });

  test("a failed ADD is undone: the error names the plugin and the pod, and the pod keeps no veth or address", async () => {
    const confDir = join(fx.dir, "failing.d");
    const dataDir = join(fx.dir, "ipam-failing");
    mkdirSync(confDir);
    writeFileSync(
      join(confDir, "10-failing.conflist"),
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "berth-failing",
        plugins: [
          { type: "bridge", bridge: fx.bridge, isGateway: false, ipMasq: false, ipam: { type: "host-local", ranges: [[{ subnet: fx.subnet, gateway: fx.subnet.replace(/0\/24$/, "1") }]], dataDir } },
          // portmap refuses this mark bit: its ADD fails after the bridge plugin's succeeded.
          { type: "portmap", capabilities: { portMappings: true }, markMasqBit: 99 },
        ],
      }),
    );
    const failing = new CniNetwork({ confDir, binDirs: [CNI_BIN], defaults: { bridge: fx.bridge, subnet: fx.subnet, ipamDataDir: dataDir }, log: silentLogger });
    const c = pin("pod-c");
    c.req.portMappings = [{ protocol: "tcp", containerPort: 80, hostPort: fx.freeHostPort(1), hostIp: "" }];
    const portsBefore = fx.bridgePorts();
    await assert.rejects(failing.setUp(c.req), (err: Error) => {
      assert.match(err.message, /CNI ADD of pod berth-test\/pod-c \([0-9a-f]{12}\) failed in plugin "portmap" of network "berth-failing": .*MasqMarkBit/);
      return true;
    });
    assert.deepEqual(fx.bridgePorts(), portsBefore, "the bridge plugin's veth was removed again");
    assert.ok(!fx.inNetns(c.pins.net!, ["/bin/busybox", "ip", "-o", "link"]).includes("eth0"), "no eth0 in the pod");
    assert.deepEqual(existsSync(join(dataDir, "berth-failing")) ? tool("ls", [join(dataDir, "berth-failing")]).split("\n").filter((f) => /^\d/.test(f)) : [], [], "no address stays leased");
    unpinNamespaces(linuxSyscalls, c.pins);
    pods.delete("pod-c");
  });

  test("a missing plugin binary makes NetworkReady false, and the message names it", async () => {
    const bin = join(fx.dir, "bin");
    mkdirSync(bin);
    for (const p of ["bridge", "host-local", "loopback"]) symlinkSync(join(CNI_BIN, p), join(bin, p));
    const partial = new CniNetwork({ confDir: fx.confDir, binDirs: [bin], defaults: { bridge: fx.bridge, subnet: fx.subnet, ipamDataDir: fx.ipamDataDir }, log: silentLogger });
    const st = await partial.status();
    assert.deepEqual([st.ready, st.reason], [false, "NetworkPluginNotReady"]);
    assert.match(st.message, /CNI plugin portmap not found in .*\/bin \(network "berth" of .*10-berth\.conflist\)/);
    assert.deepEqual(await network.status(), { ready: true, reason: "", message: "" });
  });

  test("a new pod CIDR moves berth's network and its bridge address to it", async () => {
    const next = fx.anotherSubnet();
    await network.setPodCidr(next);
    const conf = JSON.parse(readFileSync(join(fx.confDir, DEFAULT_CONFLIST_NAME), "utf8")) as { plugins: Array<{ ipam?: { ranges: Array<Array<{ subnet: string }>> } }> };
    assert.equal(conf.plugins[0]!.ipam!.ranges[0]![0]!.subnet, next);
    const addrs = (JSON.parse(tool("ip", ["-j", "-4", "addr", "show", "dev", fx.bridge])) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>)[0]!.addr_info;
    assert.deepEqual(
      addrs.map((i) => `${i.local}/${i.prefixlen}`),
      [`${next.replace(/0\/24$/, "1")}/24`],
    );
    const d = pin("pod-d");
    const net = await join_(d);
    assertInSubnet(net.ips[0]!, next);
    await network.tearDown(d.req, net.result);
    unpinNamespaces(linuxSyscalls, d.pins);
    pods.delete("pod-d");
  });

  test("after the last pod, no pin, veth or hostPort chain of the test is left; the fixture then removes the bridge and its guard rule", async () => {
    assert.deepEqual([...pods.keys()], []);
    // pod-b's veth goes with its namespace, which the kernel destroys asynchronously once unpinned.
    await waitFor(() => fx.bridgePorts().length === 0, 5_000);
    assert.deepEqual(fx.bridgePorts(), []);
    const left = fx.leftovers().filter((l) => !l.startsWith(`bridge ${fx.bridge}`) && !l.startsWith(`filter rule on ${fx.bridge}`) && !l.startsWith("dir "));
    assert.deepEqual(left, [], "berth's own teardown left nothing but its bridge");
    await fx.cleanup();
    assert.deepEqual(fx.leftovers(), []);
  });
});
