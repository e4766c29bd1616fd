// Reading what plugins print: the pod's addresses from results of every CNI version, and the
// spec's error object turned into berth's typed errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { ipsOf, parsePluginError, parseResult, pluginFailure, podInterfaceOf } from "../../runtime/network/cni-result";

const exit = (over: Partial<Parameters<typeof pluginFailure>[1]>) => ({ code: 1, signal: null, timedOut: false, stdout: "", stderr: "", ...over });

describe("CNI results", () => {
  test("a 1.0 result: the pod's addresses without prefix, IPv4 first, none of the host-side interfaces'", () => {
    const result = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "cni0" }, { name: "veth1" }, { name: "eth0", sandbox: "/run/berth/ns/net/p" }],
      ips: [
        { address: "fd00:1::5/64", interface: 2 },
        { address: "10.88.0.1/16", interface: 0 },
        { address: "10.88.0.5/16", gateway: "10.88.0.1", interface: 2 },
      ],
    };
    assert.deepEqual(ipsOf(result), ["10.88.0.5", "fd00:1::5"]);
    assert.equal(podInterfaceOf(result, "eth0"), "eth0");
  });

  test("a 0.4 result (ips with version, no interface index) and a 0.2 result (ip4/ip6)", () => {
    assert.deepEqual(ipsOf({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.1.2.3/24" }] }), ["10.1.2.3"]);
    assert.deepEqual(ipsOf({ cniVersion: "0.2.0", ip4: { ip: "10.1.2.3/24" }, ip6: { ip: "fd00::3/64" } }), ["10.1.2.3", "fd00::3"]);
    assert.deepEqual(ipsOf(undefined), []);
    assert.deepEqual(ipsOf({ ips: "nonsense" }), []);
  });

  test("the pod's interface is the one in the sandbox named like CNI_IFNAME, else the first in the sandbox, else CNI_IFNAME", () => {
    assert.equal(podInterfaceOf({ interfaces: [{ name: "veth1" }, { name: "net1", sandbox: "/ns" }] }, "eth0"), "net1");
    assert.equal(podInterfaceOf({}, "eth0"), "eth0");
  });

  test("a result is a JSON object, nothing else", () => {
    assert.deepEqual(parseResult('{"cniVersion":"1.0.0"}'), { cniVersion: "1.0.0" });
    for (const bad of ["", "null", "[]", '"x"', "{"]) assert.equal(parseResult(bad), undefined, bad);
  });
});

describe("CNI errors", () => {
  const what = 'CNI ADD of pod prod/web (0123456789ab) failed in plugin "bridge" of network "berth"';

  test("the spec's error object is read from stdout", () => {
    assert.deepEqual(parsePluginError('{"cniVersion":"1.0.0","code":7,"msg":"Invalid Configuration","details":"Network 192.168.0.0/31 too small"}'), { code: 7, msg: "Invalid Configuration", details: "Network 192.168.0.0/31 too small" });
    assert.equal(parsePluginError("panic: runtime error"), undefined);
    assert.equal(parsePluginError('{"cniVersion":"1.0.0"}'), undefined, "a result is not an error");
  });

  test("configuration errors (codes 1, 2, 4, 6, 7) are FAILED_PRECONDITION, 'try again later' (11) UNAVAILABLE, others INTERNAL", () => {
    const codeOf = (c: number) => pluginFailure(what, exit({ stdout: JSON.stringify({ code: c, msg: "m" }) }), 60_000).code;
    assert.deepEqual([1, 2, 4, 6, 7].map(codeOf), Array(5).fill(Code.FAILED_PRECONDITION));
    assert.equal(codeOf(11), Code.UNAVAILABLE);
    assert.equal(codeOf(3), Code.INTERNAL);
    assert.equal(codeOf(999), Code.INTERNAL);
  });

  test("the message says which invocation failed and what the plugin said", () => {
    const err = pluginFailure(what, exit({ stdout: JSON.stringify({ code: 999, msg: "failed to set bridge addr", details: "could not add IP address to \"cni0\": permission denied" }) }), 60_000);
    assert.equal(err.message, `${what}: failed to set bridge addr: could not add IP address to "cni0": permission denied (CNI error code 999)`);
  });

  test("a plugin without an error object is described by its exit and the end of its stderr", () => {
    assert.equal(pluginFailure(what, exit({ code: 2, stderr: "line 1\nline 2\n" }), 60_000).message, `${what}: the plugin exited with code 2: line 1 | line 2`);
    assert.equal(pluginFailure(what, exit({ code: null, signal: "SIGSEGV" }), 60_000).message, `${what}: the plugin was killed by SIGSEGV without a message`);
    const late = pluginFailure(what, exit({ code: null, signal: "SIGKILL", timedOut: true }), 90_000);
    assert.equal(late.code, Code.DEADLINE_EXCEEDED);
    assert.equal(late.message, `${what}: the plugin did not finish within 90 s and was killed`);
  });
});
