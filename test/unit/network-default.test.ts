// berth's own network: the conflist it writes, the bridge address it takes, how a new pod CIDR
// changes it, and the IPv4 arithmetic and portmap chain removal behind it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { DEFAULT_CONFLIST_NAME, defaultConflist, gatewayOf, ownBridgeOf, withSubnet } from "../../runtime/network/default-network";
import { contains, overlaps, parseIpv4, parseIpv4Cidr } from "../../runtime/network/ipv4-cidr";
import { idleChainsRemoval } from "../../runtime/network/portmap-chains";

const OPTS = { bridge: "berth0", subnet: "10.88.0.0/16", ipamDataDir: "/var/lib/berth/cni/networks" };

describe("berth's default network", () => {
  test("a bridge without gateway mode or masquerade (nothing turns on ip_forward), hairpin on, host-local on the subnet; portmap with SNAT for localhost hostPorts", () => {
    assert.deepEqual(defaultConflist(OPTS), {
      cniVersion: "1.0.0",
      name: "berth",
      plugins: [
        {
          type: "bridge",
          bridge: "berth0",
          isGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: "host-local", ranges: [[{ subnet: "10.88.0.0/16", gateway: "10.88.0.1" }]], dataDir: "/var/lib/berth/cni/networks" },
        },
        { type: "portmap", capabilities: { portMappings: true }, snat: true },
      ],
    });
  });

  test("the subnet is written in canonical form; a bridge name Linux would refuse is refused", () => {
    const conf = defaultConflist({ ...OPTS, subnet: "10.88.7.9/16" });
    assert.deepEqual((conf.plugins[0]!.ipam as { ranges: unknown }).ranges, [[{ subnet: "10.88.0.0/16", gateway: "10.88.0.1" }]]);
    for (const bridge of ["", "a-name-longer-than-15", "br 0", "br/0"]) {
      assert.throws(() => defaultConflist({ ...OPTS, bridge }), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT, bridge);
    }
  });

  test("the bridge's address is the subnet's first host; a subnet without room for it and a pod is refused", () => {
    assert.equal(gatewayOf("10.88.0.0/16"), "10.88.0.1");
    assert.equal(gatewayOf("192.168.5.77/24"), "192.168.5.1");
    assert.equal(gatewayOf("10.9.9.8/30"), "10.9.9.9");
    for (const bad of ["10.0.0.0/31", "10.0.0.0/32", "fd00::/64", "10.0.0.0", "10.0.0.256/24", "10.0.0.0/33", "x"]) {
      assert.throws(() => gatewayOf(bad), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT, bad);
    }
  });

  test("a new pod CIDR changes the range and its gateway and nothing else", () => {
    const moved = withSubnet(defaultConflist(OPTS), "10.244.3.0/24");
    const [bridge, portmap] = moved.plugins;
    assert.deepEqual(bridge!.ipam, { type: "host-local", ranges: [[{ subnet: "10.244.3.0/24", gateway: "10.244.3.1" }]], dataDir: OPTS.ipamDataDir });
    assert.equal(bridge!.bridge, "berth0");
    assert.deepEqual(portmap, defaultConflist(OPTS).plugins[1]);
  });

  test("only the file berth writes, under its name and with its network name, is berth's own", () => {
    const conf = { ...defaultConflist(OPTS), file: `/etc/cni/net.d/${DEFAULT_CONFLIST_NAME}` };
    assert.deepEqual(ownBridgeOf(conf), { bridge: "berth0", subnet: "10.88.0.0/16" });
    assert.equal(ownBridgeOf({ ...conf, file: "/etc/cni/net.d/10-mine.conflist" }), undefined);
    assert.equal(ownBridgeOf({ ...conf, name: "mine" }), undefined);
  });
});

describe("IPv4 CIDRs", () => {
  test("parsing clears host bits and refuses what is not a.b.c.d/n", () => {
    assert.deepEqual(parseIpv4Cidr("10.88.7.9/16"), { network: parseIpv4("10.88.0.0"), prefix: 16 });
    assert.deepEqual(parseIpv4Cidr("0.0.0.0/0"), { network: 0, prefix: 0 });
    for (const bad of ["10.88.0.0/16/1", "10.88.0/16", "1.2.3.4/-1"]) assert.throws(() => parseIpv4Cidr(bad), bad);
  });

  test("overlap and containment", () => {
    const net = parseIpv4Cidr("10.89.4.0/24");
    assert.ok(overlaps(net, parseIpv4Cidr("10.89.0.0/16")));
    assert.ok(overlaps(net, parseIpv4Cidr("10.89.4.128/25")));
    assert.ok(!overlaps(net, parseIpv4Cidr("10.89.5.0/24")));
    assert.ok(contains(net, parseIpv4("10.89.4.255")!));
    assert.ok(!contains(net, parseIpv4("10.89.5.0")!));
  });
});

describe("portmap's idle top-level chains", () => {
  const SAVE = [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ":CNI-HOSTPORT-DNAT - [0:0]",
    ":CNI-HOSTPORT-MASQ - [0:0]",
    ":CNI-HOSTPORT-SETMARK - [0:0]",
    ":KUBE-SERVICES - [0:0]",
    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    "-A PREROUTING -j KUBE-SERVICES",
    "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
    "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
    '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000',
    "COMMIT",
  ];

  test("with no hostPort left, one transaction removes the jumps, then the chains, CNI-HOSTPORT-DNAT unflushed and last", () => {
    assert.equal(
      idleChainsRemoval(SAVE.join("\n")),
      [
        "*nat",
        "-D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        '-D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
        "-F CNI-HOSTPORT-SETMARK",
        "-F CNI-HOSTPORT-MASQ",
        "-X CNI-HOSTPORT-SETMARK",
        "-X CNI-HOSTPORT-MASQ",
        "-X CNI-HOSTPORT-DNAT",
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  test("nothing to do while a hostPort is left, or when portmap never ran", () => {
    const busy = [...SAVE.slice(0, -1), '-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"other\\"" -j CNI-DN-1', "COMMIT"];
    assert.equal(idleChainsRemoval(busy.join("\n")), undefined);
    assert.equal(idleChainsRemoval("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"), undefined);
  });
});
