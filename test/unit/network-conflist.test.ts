// Which CNI network configuration berth uses, and why it refuses one: libcni's selection (the
// first .conf/.conflist/.json in lexical order) and the spec's rules for a configuration.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { loadNetworkConfig, parseNetworkConfig, pluginTypesOf } from "../../runtime/network/conflist";

describe("network configuration selection", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-conflist-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (name: string, doc: unknown) => writeFileSync(join(dir, name), typeof doc === "string" ? doc : JSON.stringify(doc));

  test("the first .conf, .conflist or .json in lexical order is used; other files are not configurations", () => {
    write("99-last.conflist", { cniVersion: "1.0.0", name: "last", plugins: [{ type: "bridge" }] });
    write("20-mid.json", { cniVersion: "1.0.0", name: "mid", plugins: [{ type: "ptp" }] });
    write("00-notes.txt", "not a configuration");
    write("05-backup.conflist.bak", "{");
    assert.equal(loadNetworkConfig(dir)!.name, "mid");
    write("10-first.conf", { cniVersion: "0.4.0", name: "first", type: "macvlan", master: "eth0" });
    const conf = loadNetworkConfig(dir)!;
    assert.deepEqual(conf, { cniVersion: "0.4.0", name: "first", plugins: [{ cniVersion: "0.4.0", name: "first", type: "macvlan", master: "eth0" }], file: join(dir, "10-first.conf") }, "a single-plugin .conf runs as a list of one");
  });

  test("no configuration: an empty or absent directory", () => {
    assert.equal(loadNetworkConfig(dir), undefined);
    assert.equal(loadNetworkConfig(join(dir, "absent")), undefined);
  });

  test("a first file that cannot be used is an error naming it, not a reason to take the next", () => {
    write("00-broken.conflist", "{ nope");
    write("10-good.conflist", { cniVersion: "1.0.0", name: "good", plugins: [{ type: "bridge" }] });
    assert.throws(() => loadNetworkConfig(dir), (e: { code: number; message: string }) => e.code === Code.FAILED_PRECONDITION && e.message.startsWith(`CNI network configuration ${join(dir, "00-broken.conflist")} is not valid JSON`));
  });

  for (const [what, doc, why] of [
    ["no name", { cniVersion: "1.0.0", plugins: [{ type: "bridge" }] }, /has no name/],
    ["a name that cannot be a directory", { cniVersion: "1.0.0", name: "a/b", plugins: [{ type: "bridge" }] }, /invalid name "a\/b"/],
    ["an empty plugin list", { cniVersion: "1.0.0", name: "n", plugins: [] }, /has no plugins/],
    ["a plugin without type", { cniVersion: "1.0.0", name: "n", plugins: [{ type: "bridge" }, { capabilities: {} }] }, /plugins\[1\] has no plugin "type"/],
    ["a type that is a path", { cniVersion: "1.0.0", name: "n", plugins: [{ type: "../../bin/sh" }] }, /plugins\[0\] has no plugin "type"/],
    ["an IPAM type that is not a name", { cniVersion: "1.0.0", name: "n", plugins: [{ type: "bridge", ipam: { type: 7 } }] }, /plugins\[0\] has an "ipam" whose "type" is not a plugin name/],
    ["a version that is not a string", { cniVersion: 1, name: "n", plugins: [{ type: "bridge" }] }, /cniVersion that is not a string/],
    ["an array", [], /is not a JSON object/],
  ] as const) {
    test(`a configuration with ${what} is refused, naming the file`, () => {
      assert.throws(() => parseNetworkConfig(JSON.stringify(doc), "/etc/cni/net.d/10-x.conflist"), (e: { code: number; message: string }) => e.code === Code.FAILED_PRECONDITION && e.message.includes("/etc/cni/net.d/10-x.conflist") && why.test(e.message));
    });
  }

  test("a list without cniVersion is 0.1.0, as plugins read it; disableCheck is kept", () => {
    const conf = parseNetworkConfig(JSON.stringify({ name: "old", disableCheck: true, plugins: [{ type: "bridge" }] }), "/x.conflist");
    assert.equal(conf.cniVersion, "0.1.0");
    assert.equal(conf.disableCheck, true);
  });

  test("the binaries a network needs include delegated IPAM plugins, once each", () => {
    assert.deepEqual(pluginTypesOf([{ type: "bridge", ipam: { type: "host-local" } }, { type: "portmap" }, { type: "ptp", ipam: { type: "host-local" } }]), ["bridge", "host-local", "portmap", "ptp"]);
  });
});
