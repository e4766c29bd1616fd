import assert from "node:assert/strict";
import { test } from "node:test";
import { layoutFrom, locateCgroup, parseMountinfo, parseProcCgroup } from "../../runtime/cgroups/detect";
import { InvalidArgumentError } from "../../runtime/errors";

// This host's shape: controllers on v1, memory below a per-process sub-tree, v2 without controllers.
const HYBRID_MOUNTINFO = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/0cb4
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

const UNIFIED_MOUNTINFO = `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

// Inside a Docker container on a legacy host: each hierarchy shows only the container's sub-tree,
// cpu and cpuacct are co-mounted, and one mount point needs mountinfo's octal escapes.
const CONTAINER_MOUNTINFO = `120 115 0:39 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
121 120 0:19 /docker/abc /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime master:5 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
122 120 0:20 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime master:6 - cgroup cgroup rw,cpuacct,cpu
123 120 0:21 /docker/abc /sys/fs/cgroup/my\\040memory rw,nosuid,nodev,noexec,relatime master:7 - cgroup cgroup rw,memory,clone_children
124 120 0:22 /docker/abc /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,pids
`;
const CONTAINER_CGROUP = `5:pids:/docker/abc
4:memory:/docker/abc
3:cpu,cpuacct:/docker/abc
1:name=systemd:/docker/abc
`;

test("mountinfo parsing finds fstype and super options past the optional fields, and unescapes paths", () => {
  const entries = parseMountinfo(CONTAINER_MOUNTINFO);
  const mem = entries.find((e) => e.superOptions.includes("memory"));
  assert.equal(mem?.mountpoint, "/sys/fs/cgroup/my memory");
  assert.equal(mem?.root, "/docker/abc");
  assert.equal(mem?.fstype, "cgroup");
  assert.equal(entries.find((e) => e.mountpoint === "/sys/fs/cgroup/systemd")?.fstype, "cgroup");
});

test("/proc/self/cgroup parsing keys every co-mounted controller and the v2 line as the empty name", () => {
  const m = parseProcCgroup("3:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c (deleted)\n");
  assert.equal(m.get("cpu"), "/a");
  assert.equal(m.get("cpuacct"), "/a");
  assert.equal(m.get("name=systemd"), "/b");
  assert.equal(m.get(""), "/c");
  assert.throws(() => parseProcCgroup("garbage\n"), InvalidArgumentError);
});

test("a host with v1 controllers and a controller-less v2 mount is hybrid, with the caller's own path per hierarchy", () => {
  const layout = layoutFrom(HYBRID_MOUNTINFO, HYBRID_CGROUP);
  assert.equal(layout.mode, "hybrid");
  assert.equal(layout.unified?.mountpoint, "/sys/fs/cgroup/unified");
  assert.equal(layout.v1.memory.own, "/process_api/0cb4");
  assert.equal(layout.v1.cpu.own, "/");
  assert.equal(layout.v1["name=systemd"].mountpoint, "/sys/fs/cgroup/systemd");
  assert.deepEqual(Object.keys(layout.v1).sort(), ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "name=systemd", "pids"]);
});

test("a host with only cgroup2 is unified and gets the v2 driver's location", () => {
  const layout = layoutFrom(UNIFIED_MOUNTINFO, "0::/system.slice/berth.service\n");
  assert.equal(layout.mode, "unified");
  const loc = locateCgroup("pod1/ctr1", layout);
  assert.deepEqual(loc, {
    version: 2,
    path: "/system.slice/berth.service/berth/pod1/ctr1",
    dirs: { unified: "/sys/fs/cgroup/system.slice/berth.service/berth/pod1/ctr1" },
  });
});

test("without a cgroup2 mount the layout is legacy; co-mounted controllers share one directory", () => {
  const layout = layoutFrom(CONTAINER_MOUNTINFO, CONTAINER_CGROUP);
  assert.equal(layout.mode, "legacy");
  assert.equal(layout.v1.cpu, layout.v1.cpuacct);
  assert.deepEqual(layout.v1.cpu.controllers, ["cpu", "cpuacct"]);
  const loc = locateCgroup("ctr", layout, { root: "berth" });
  // The mount shows /docker/abc as its root, so /docker/abc/berth/ctr is <mountpoint>/berth/ctr.
  assert.equal(loc.dirs.cpu, "/sys/fs/cgroup/cpu,cpuacct/berth/ctr");
  assert.equal(loc.dirs.cpuacct, loc.dirs.cpu);
  assert.equal(loc.dirs.memory, "/sys/fs/cgroup/my memory/berth/ctr");
  assert.equal(loc.path, "/docker/abc/berth/ctr");
  assert.equal(loc.dirs.unified, undefined);
});

test("on the hybrid host a relative cgroup lands below the caller's own cgroup in each hierarchy, v2 included", () => {
  const loc = locateCgroup("ctr", layoutFrom(HYBRID_MOUNTINFO, HYBRID_CGROUP), { root: "berth-test" });
  assert.equal(loc.version, 1);
  assert.equal(loc.dirs.memory, "/sys/fs/cgroup/memory/process_api/0cb4/berth-test/ctr");
  assert.equal(loc.dirs.pids, "/sys/fs/cgroup/pids/berth-test/ctr");
  assert.equal(loc.dirs.unified, "/sys/fs/cgroup/unified/berth-test/ctr");
  assert.equal(loc.path, "/process_api/0cb4/berth-test/ctr");
});

test("an absolute cgroup outside a container's mounted sub-tree is refused", () => {
  const layout = layoutFrom(CONTAINER_MOUNTINFO, CONTAINER_CGROUP);
  assert.throws(() => locateCgroup("/elsewhere/ctr", layout), /outside the part of the hierarchy mounted/);
  assert.equal(locateCgroup("/docker/abc/x", layout).dirs.pids, "/sys/fs/cgroup/pids/x");
});

test("no cgroup filesystem at all is an error that says so", () => {
  assert.throws(() => layoutFrom("22 1 254:1 / / rw - ext4 /dev/vda1 rw\n", ""), /no cgroup filesystem is mounted/);
});
