// Pinning a pod's namespaces, against the recording fake syscalls: the order of the calls, that
// the thread always goes back to the namespaces it saved whatever step fails, and that a failed
// pin leaves no file and no mount behind.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { CLONE, MNT_DETACH, MS } from "../../runtime/linux/types";
import { listPinnedNamespaces, namespacePinner, pinNamespaces, unpinNamespaces } from "../../runtime/network/namespaces";
import { FakeSyscalls } from "../support/fake-syscalls";

const POD = "6f1c0e2d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d";
const FLAG = { net: CLONE.NEWNET, ipc: CLONE.NEWIPC, uts: CLONE.NEWUTS };
const STATE_CHANGING = ["unshare", "sethostname", "mount", "setns", "umount2"];

describe("pinning a pod's namespaces (fake syscalls)", () => {
  let dir: string;
  let sys: FakeSyscalls;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-pins-"));
    sys = new FakeSyscalls();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const order = () => sys.calls.map((c) => c.call).filter((c) => STATE_CHANGING.includes(c));
  const pinFiles = () => ["net", "ipc", "uts"].flatMap((k) => (existsSync(join(dir, k)) ? readdirSync(join(dir, k)) : []));

  test("the thread saves its namespaces, unshares once, names the new UTS namespace, pins each kind, then goes back to each saved one", () => {
    const pins = pinNamespaces(sys, dir, POD, ["net", "ipc", "uts"], { hostname: "web-0" });
    assert.deepEqual(pins, { net: join(dir, "net", POD), ipc: join(dir, "ipc", POD), uts: join(dir, "uts", POD) });
    assert.deepEqual(order(), ["unshare", "sethostname", "mount", "mount", "mount", "setns", "setns", "setns"]);
    assert.deepEqual(sys.callsOf("unshare"), [[CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS]]);
    assert.deepEqual(sys.callsOf("sethostname"), [["web-0"]]);
    const opened = sys.callsOf("open");
    assert.deepEqual(
      opened.map((a) => a[0]),
      ["/proc/thread-self/ns/net", "/proc/thread-self/ns/ipc", "/proc/thread-self/ns/uts"],
      "the saved namespaces are the calling thread's",
    );
    const fds = [100, 101, 102];
    assert.deepEqual(sys.callsOf("setns"), [
      [fds[0], FLAG.net],
      [fds[1], FLAG.ipc],
      [fds[2], FLAG.uts],
    ]);
    assert.deepEqual(
      sys.callsOf("mount"),
      (["net", "ipc", "uts"] as const).map((k) => [`/proc/thread-self/ns/${k}`, join(dir, k, POD), null, MS.BIND, null]),
    );
    assert.deepEqual(
      sys.callsOf("close").map((a) => a[0]),
      fds,
      "every saved fd is closed",
    );
    assert.ok(((opened[0]![1] as number) & 0o2000000) !== 0, "saved fds are close-on-exec");
    assert.deepEqual(pinFiles().length, 3);
  });

  test("without a UTS namespace, a hostname is not set (it would be the host's)", () => {
    pinNamespaces(sys, dir, POD, ["net", "ipc"], { hostname: "web-0" });
    assert.deepEqual(sys.callsOf("sethostname"), []);
    assert.deepEqual(sys.callsOf("unshare"), [[CLONE.NEWNET | CLONE.NEWIPC]]);
  });

  test("no kinds: nothing is made", () => {
    assert.deepEqual(pinNamespaces(sys, dir, POD, []), {});
    assert.deepEqual(sys.calls, []);
  });

  for (const step of [
    { name: "unshare", fail: () => sys.failOn("unshare", "EPERM"), pinned: 0 },
    { name: "sethostname", fail: () => sys.failOn("sethostname", "EINVAL"), pinned: 0 },
    { name: "the second pin's mount", fail: () => sys.failOn("mount", "EACCES", { match: (a) => String(a[1]).includes("/ipc/") }), pinned: 1 },
  ]) {
    test(`when ${step.name} fails, the thread still goes back to every saved namespace and nothing stays pinned`, () => {
      step.fail();
      assert.throws(
        () => pinNamespaces(sys, dir, POD, ["net", "ipc", "uts"], { hostname: "web-0" }),
        (e: { code: number; message: string }) => e.code === Code.INTERNAL && e.message.startsWith(`pod ${POD}: cannot make its net/ipc/uts namespaces under ${dir}: `),
      );
      assert.equal(sys.callsOf("setns").length, 3);
      assert.equal(sys.callsOf("close").length, 3);
      assert.deepEqual(
        sys.callsOf("umount2"),
        step.pinned ? [[join(dir, "net", POD), MNT_DETACH]] : [],
        "what was pinned before the failure is unmounted",
      );
      assert.deepEqual(sys.mountTable(), []);
      assert.deepEqual(pinFiles(), [], "no pin file is left");
    });
  }

  test("a thread that cannot go back says that berth must restart, after trying every namespace and closing every fd", () => {
    sys.failOn("setns", "ENOMEM", { match: (a) => a[1] === CLONE.NEWIPC });
    assert.throws(
      () => pinNamespaces(sys, dir, POD, ["net", "ipc", "uts"]),
      (e: { code: number; message: string }) => e.code === Code.INTERNAL && /did not return to its own namespaces .*ipc: setns: ENOMEM.*restart berth/.test(e.message),
    );
    assert.equal(sys.callsOf("setns").length, 3);
    assert.equal(sys.callsOf("close").length, 3);
    assert.deepEqual(pinFiles(), []);
  });

  test("a pod that already has pins is refused before any namespace is made", () => {
    mkdirSync(join(dir, "uts"));
    writeFileSync(join(dir, "uts", POD), "");
    assert.throws(() => pinNamespaces(sys, dir, POD, ["net", "uts"]), (e: { code: number }) => e.code === Code.ALREADY_EXISTS);
    assert.deepEqual(sys.callsOf("unshare"), []);
    assert.ok(!existsSync(join(dir, "net", POD)), "the net pin file made before the refusal is removed");
  });

  test("an id that is not one path component is refused", () => {
    for (const id of ["../etc", "a/b", "", ".hidden"]) {
      assert.throws(() => pinNamespaces(sys, dir, id, ["net"]), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT, id);
    }
    assert.deepEqual(sys.calls, []);
  });

  test("unpinning unmounts (detached) then removes each pin; repeating it succeeds", () => {
    const pins = pinNamespaces(sys, dir, POD, ["net", "uts"]);
    unpinNamespaces(sys, pins);
    assert.deepEqual(sys.callsOf("umount2"), [
      [pins.net, MNT_DETACH],
      [pins.uts, MNT_DETACH],
    ]);
    assert.deepEqual(pinFiles(), []);
    unpinNamespaces(sys, pins);
    unpinNamespaces(sys, {});
  });

  test("a pin that cannot be unmounted is reported by path, and the others are still removed", () => {
    const pins = pinNamespaces(sys, dir, POD, ["net", "ipc"]);
    sys.failOn("umount2", "EPERM", { match: (a) => a[0] === pins.net });
    assert.throws(() => unpinNamespaces(sys, pins), (e: { code: number; message: string }) => e.code === Code.INTERNAL && e.message.includes(`${pins.net}: umount2`));
    assert.ok(existsSync(pins.net!), "a pin still mounted is not unlinked");
    assert.ok(!existsSync(pins.ipc!));
  });

  test("the pins under a directory are listed by pod, for recovery", () => {
    const other = "aa".repeat(32);
    pinNamespaces(sys, dir, POD, ["net", "ipc", "uts"]);
    pinNamespaces(sys, dir, other, ["ipc"]);
    assert.deepEqual(
      listPinnedNamespaces(dir),
      new Map([
        [POD, { net: join(dir, "net", POD), ipc: join(dir, "ipc", POD), uts: join(dir, "uts", POD) }],
        [other, { ipc: join(dir, "ipc", other) }],
      ]),
    );
    assert.deepEqual(listPinnedNamespaces(join(dir, "nothing-here")), new Map());
  });

  test("the pod service's pinner passes the hostname through", () => {
    const pinner = namespacePinner(sys, dir);
    const pins = pinner.pin(POD, ["uts"], "db-1");
    assert.deepEqual(sys.callsOf("sethostname"), [["db-1"]]);
    pinner.unpin(pins);
    assert.deepEqual(pinFiles(), []);
  });
});
