// What a CNI plugin is given: where berth finds it, its environment, and the request
// configuration derived for it (CNI spec, sections 2 and 3).
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cniArgs, findPlugin, type Invocation, pluginEnv, pluginStdin } from "../../runtime/network/plugin-exec";

const LIST = { cniVersion: "1.0.0", name: "net1", plugins: [] };
const INVOCATION: Invocation = { command: "ADD", containerId: "c1", netns: "/run/berth/ns/net/c1", ifName: "eth0", args: "IgnoreUnknown=1", binDirs: ["/opt/cni/bin", "/usr/lib/cni"] };

describe("plugin invocation", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-plugin-exec-"));
    for (const d of ["a", "b"]) mkdirSync(join(dir, d));
    const exe = (path: string, mode = 0o755) => {
      writeFileSync(path, "#!/bin/sh\n");
      chmodSync(path, mode);
    };
    exe(join(dir, "a", "notexec"), 0o644);
    exe(join(dir, "b", "notexec"));
    exe(join(dir, "a", "both"));
    exe(join(dir, "b", "both"));
    mkdirSync(join(dir, "a", "adir"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("a plugin is the first regular executable file of its name in the bin dirs", () => {
    const dirs = [join(dir, "a"), join(dir, "b")];
    assert.equal(findPlugin("both", dirs), join(dir, "a", "both"));
    assert.equal(findPlugin("notexec", dirs), join(dir, "b", "notexec"), "a file without the execute bit is skipped");
    assert.equal(findPlugin("adir", dirs), undefined, "a directory is not a plugin");
    assert.equal(findPlugin("../a/both", [join(dir, "b")]), undefined, "a type is a name, not a path");
    assert.equal(findPlugin("missing", dirs), undefined);
  });

  test("CNI_ARGS carries the pod's identity as kubelet's runtimes pass it", () => {
    assert.equal(
      cniArgs({ podId: "abc", name: "web", namespace: "prod", uid: "u-1", netns: "/x", portMappings: [] }),
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1",
    );
  });

  test("the environment is the daemon's, with this invocation's CNI_* variables replacing any it had", () => {
    const env = pluginEnv({ PATH: "/usr/sbin:/usr/bin", LANG: "C", CNI_NETNS: "/stale", CNI_EXTRA: "x", UNSET: undefined }, INVOCATION);
    assert.deepEqual(env, {
      PATH: "/usr/sbin:/usr/bin",
      LANG: "C",
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "c1",
      CNI_NETNS: "/run/berth/ns/net/c1",
      CNI_IFNAME: "eth0",
      CNI_ARGS: "IgnoreUnknown=1",
      CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
    });
  });

  test("a daemon without PATH still lets plugins find iptables and ip in sbin", () => {
    assert.match(pluginEnv({}, INVOCATION).PATH!, /\/usr\/sbin/);
  });

  test("stdin: the plugin's own fields passed through, the list's name and version over the plugin's, no capabilities", () => {
    const plugin = { type: "bridge", name: "ignored", cniVersion: "0.3.1", bridge: "br0", ipam: { type: "host-local" }, capabilities: { portMappings: false } };
    assert.deepEqual(JSON.parse(pluginStdin(LIST, plugin, { portMappings: [{ hostPort: 1, containerPort: 2, protocol: "tcp" }] })), { type: "bridge", name: "net1", cniVersion: "1.0.0", bridge: "br0", ipam: { type: "host-local" } });
  });

  test("runtimeConfig holds exactly the capabilities the plugin declares and the runtime offers", () => {
    const plugin = { type: "portmap", capabilities: { portMappings: true, bandwidth: true }, runtimeConfig: { stale: 1 }, prevResult: { stale: 1 } };
    const mappings = [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "127.0.0.1" }];
    const stdin = JSON.parse(pluginStdin(LIST, plugin, { portMappings: mappings }, { cniVersion: "1.0.0", ips: [] }));
    assert.deepEqual(stdin.runtimeConfig, { portMappings: mappings });
    assert.deepEqual(stdin.prevResult, { cniVersion: "1.0.0", ips: [] });
    const none = JSON.parse(pluginStdin(LIST, plugin, {}));
    assert.equal(none.runtimeConfig, undefined, "nothing offered, no runtimeConfig (and none from the file: it is reserved)");
    assert.equal(none.prevResult, undefined, "no prevResult for the first ADD, even if the file had one");
  });
});
