import assert from "node:assert/strict";
import { test } from "node:test";
import { criCgroupsPath, pathInHierarchy, resolveCgroupsPath } from "../../runtime/cgroups/path";
import { InvalidArgumentError } from "../../runtime/errors";

test("a relative cgroupsPath goes below berth's root, which sits below the caller's own cgroup", () => {
  const r = resolveCgroupsPath("pod1/ctr1", { root: "berth" });
  assert.deepEqual(r, { base: "own", path: "/berth/pod1/ctr1" });
  assert.equal(pathInHierarchy(r, "/system.slice/berth.service"), "/system.slice/berth.service/berth/pod1/ctr1");
  assert.equal(pathInHierarchy(r, "/"), "/berth/pod1/ctr1");
});

test("an absolute cgroupsPath is taken from the hierarchy's root, whatever the caller's cgroup", () => {
  const r = resolveCgroupsPath("/kubepods//burstable/./pod1/", { root: "berth" });
  assert.deepEqual(r, { base: "absolute", path: "/kubepods/burstable/pod1" });
  assert.equal(pathInHierarchy(r, "/somewhere"), "/kubepods/burstable/pod1");
});

test("an absolute root makes relative cgroupsPaths absolute too", () => {
  assert.deepEqual(resolveCgroupsPath("ctr", { root: "/berth" }), { base: "absolute", path: "/berth/ctr" });
});

test("the default root is berth, and an empty cgroupsPath is named after the container", () => {
  assert.deepEqual(resolveCgroupsPath("", { name: "abc" }), { base: "own", path: "/berth/abc" });
  assert.deepEqual(resolveCgroupsPath(undefined, { name: "abc" }), { base: "own", path: "/berth/abc" });
  assert.throws(() => resolveCgroupsPath("", {}), InvalidArgumentError);
});

test("paths with .. are refused, not cleaned, wherever the .. is", () => {
  for (const p of ["../escape", "a/../../b", "/a/../b", "a/.."]) {
    assert.throws(() => resolveCgroupsPath(p, { root: "berth" }), /contains "\.\."/, p);
  }
  assert.throws(() => resolveCgroupsPath("ctr", { root: "../up" }), /cgroup root "\.\.\/up" contains/);
});

test("systemd-style slice:prefix:name paths are refused with a message naming the cgroupfs driver", () => {
  assert.throws(
    () => resolveCgroupsPath("system.slice:berth:abc", { root: "berth" }),
    (err: Error) => err instanceof InvalidArgumentError && /systemd cgroup/.test(err.message) && /cgroupfs driver/.test(err.message),
  );
});

test("the root cgroup itself is refused as a container's cgroup", () => {
  assert.throws(() => resolveCgroupsPath("/", {}), /root cgroup/);
  assert.throws(() => resolveCgroupsPath("/./", {}), /root cgroup/);
});

test("kubelet's cgroup_parent is taken relative to berth's root, and systemd slices are refused", () => {
  assert.equal(criCgroupsPath("/kubepods/burstable/pod1", "ctr1"), "kubepods/burstable/pod1/ctr1");
  assert.equal(criCgroupsPath(undefined, "sandbox1"), "sandbox1");
  assert.deepEqual(resolveCgroupsPath(criCgroupsPath("/kubepods/pod1", "c"), { root: "berth" }), { base: "own", path: "/berth/kubepods/pod1/c" });
  assert.throws(() => criCgroupsPath("kubepods-burstable-pod1.slice", "c"), /cgroupDriver/);
  assert.throws(() => criCgroupsPath("/kubepods/../../etc", "c"), /contains "\.\."/);
});
