// Rootfs preparation against the recording fake: the exact mount(2) sequence runc makes for the
// default spec, bind mounts (bind, propagation, remount), refusals that name what is wrong,
// masked and read-only paths, devices, cgroup layouts, and destinations that are symlinks.
// File work (mount points, device placeholders, links) happens in a real temp rootfs.
import assert from "node:assert/strict";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnimplementedError } from "../../runtime/errors";
import { mknod, S_IFCHR } from "../../runtime/linux/file-calls";
import { MNT_DETACH, MS } from "../../runtime/linux/types";
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, defaultSpec } from "../../runtime/oci/default-spec";
import {
  createDevices,
  maskPaths,
  mountAll,
  mountFlagsFromMountinfo,
  parseMountOptions,
  prepareRootfs,
  readonlyPaths,
  remountRootReadonly,
} from "../../runtime/oci/rootfs";
import type { Spec } from "../../runtime/oci/spec-types";
import { validateSpec } from "../../runtime/oci/validate";
import { FakeSyscalls } from "../support/fake-syscalls";

const scratch = mkdtempSync(join(tmpdir(), "berth-rootfs-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;

/** A fresh rootfs directory (and a bundle beside it). */
function rootfs(): string {
  const r = join(scratch, `r${n++}`, "rootfs");
  mkdirSync(r, { recursive: true });
  return r;
}

/** The container's /dev/null as the real null device: maskPaths refuses to use anything else. */
function realDevNull(r: string): void {
  mkdirSync(join(r, "dev"), { recursive: true });
  chmodSync(join(r, "dev"), 0o755);
  mknod(join(r, "dev/null"), S_IFCHR | 0o666, 1, 3);
}

function spec(mounts: Spec["mounts"], linux: Spec["linux"] = {}): Spec {
  return { ociVersion: "1.3.0", root: { path: "rootfs" }, process: { cwd: "/", user: { uid: 0, gid: 0 }, args: ["sh"] }, mounts, linux };
}

/** The calls mountAll makes after prepareRoot's three (propagation of /, of the rootfs's parent, the rootfs bind). */
function mountCallsAfterRoot(fake: FakeSyscalls): unknown[][] {
  return fake.callsOf("mount").slice(3);
}

const isRoot = process.getuid?.() === 0;

describe("parseMountOptions", () => {
  test("flags, cleared flags, propagation and data, later options winning as in runc", () => {
    const o = parseMountOptions(["nosuid", "ro", "rw", "dev", "rbind", "rslave", "private", "mode=755", "defaults", "size=1k"], "/x");
    assert.equal(o.flags, MS.NOSUID | MS.BIND | MS.REC);
    assert.equal(o.clearedFlags, MS.RDONLY | MS.NODEV);
    assert.deepEqual(o.propagation, [MS.SLAVE | MS.REC, MS.PRIVATE]);
    assert.equal(o.data, "mode=755,defaults,size=1k");
  });

  test("every flag option of the brief maps to its MS_ flag", () => {
    const set: Array<[string, number]> = [
      ["ro", MS.RDONLY],
      ["nosuid", MS.NOSUID],
      ["nodev", MS.NODEV],
      ["noexec", MS.NOEXEC],
      ["sync", MS.SYNCHRONOUS],
      ["dirsync", MS.DIRSYNC],
      ["remount", MS.REMOUNT],
      ["mand", MS.MANDLOCK],
      ["noatime", MS.NOATIME],
      ["nodiratime", MS.NODIRATIME],
      ["relatime", MS.RELATIME],
      ["strictatime", MS.STRICTATIME],
      ["bind", MS.BIND],
      ["nosymfollow", MS.NOSYMFOLLOW],
    ];
    for (const [o, f] of set) assert.equal(parseMountOptions([o], "/x").flags, f, o);
    const cleared: Array<[string, number]> = [
      ["rw", MS.RDONLY],
      ["suid", MS.NOSUID],
      ["dev", MS.NODEV],
      ["exec", MS.NOEXEC],
      ["async", MS.SYNCHRONOUS],
      ["nomand", MS.MANDLOCK],
      ["atime", MS.NOATIME],
      ["diratime", MS.NODIRATIME],
      ["norelatime", MS.RELATIME],
      ["nostrictatime", MS.STRICTATIME],
    ];
    for (const [o, f] of cleared) assert.equal(parseMountOptions([o], "/x").clearedFlags, f, o);
    for (const [o, f] of [
      ["shared", MS.SHARED],
      ["rshared", MS.SHARED | MS.REC],
      ["slave", MS.SLAVE],
      ["unbindable", MS.UNBINDABLE],
      ["runbindable", MS.UNBINDABLE | MS.REC],
      ["rprivate", MS.PRIVATE | MS.REC],
    ] as const) {
      assert.deepEqual(parseMountOptions([o], "/x").propagation, [f], o);
    }
  });

  test("options berth cannot honour are refused, naming the option and the mount", () => {
    for (const o of ["rro", "rnosuid", "idmap", "ridmap", "tmpcopyup"]) {
      assert.throws(
        () => parseMountOptions(["nosuid", o], "/data"),
        (err: unknown) => err instanceof UnimplementedError && err.message.includes(`"${o}"`) && err.message.includes("/data"),
      );
    }
  });
});

describe("prepareRootfs with the default spec", () => {
  test("makes runc's exact calls, in runc's order, and leaves the expected mount table", { skip: !isRoot && "needs root for mknod" }, async () => {
    const r = rootfs();
    realDevNull(r);
    mkdirSync(join(r, "proc/acpi"), { recursive: true });
    mkdirSync(join(r, "proc/sys"));
    writeFileSync(join(r, "proc/kcore"), "");
    writeFileSync(join(r, "proc/sysrq-trigger"), "");
    mkdirSync(join(r, "sys/firmware"), { recursive: true });
    const s = defaultSpec();
    await validateSpec(structuredClone(s), "defaultSpec()");

    const fake = new FakeSyscalls();
    prepareRootfs(fake, s, { rootfs: r, cgroupLayout: "v2", containerRoot: r, mountFlagsOf: fake.mountFlagsOf });

    const chr = S_IFCHR | 0o666;
    assert.deepEqual(fake.calls, [
      // / rslave, the rootfs's parent private, the rootfs bound onto itself
      { call: "mount", args: ["", "/", "", MS.SLAVE | MS.REC, null] },
      { call: "mount", args: ["", r, "", MS.PRIVATE, null] },
      { call: "mount", args: [r, r, "bind", MS.BIND | MS.REC, null] },
      // the spec's mounts, in order
      { call: "mount", args: ["proc", `${r}/proc`, "proc", 0, null] },
      { call: "mount", args: ["tmpfs", `${r}/dev`, "tmpfs", MS.NOSUID | MS.STRICTATIME, "mode=0755,mode=755,size=65536k"] },
      { call: "mount", args: ["devpts", `${r}/dev/pts`, "devpts", MS.NOSUID | MS.NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"] },
      { call: "mount", args: ["shm", `${r}/dev/shm`, "tmpfs", MS.NOSUID | MS.NOEXEC | MS.NODEV, "mode=1777,size=65536k"] },
      { call: "mount", args: ["mqueue", `${r}/dev/mqueue`, "mqueue", MS.NOSUID | MS.NOEXEC | MS.NODEV, null] },
      { call: "mount", args: ["sysfs", `${r}/sys`, "sysfs", MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY, null] },
      { call: "mount", args: ["cgroup", `${r}/sys/fs/cgroup`, "cgroup2", MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RELATIME | MS.RDONLY, null] },
      // device nodes under umask 0 (/dev/null already exists: EEXIST, kept)
      { call: "umask", args: [0] },
      { call: "mknod", args: [`${r}/dev/null`, chr, 1, 3] },
      { call: "mknod", args: [`${r}/dev/random`, chr, 1, 8] },
      { call: "mknod", args: [`${r}/dev/full`, chr, 1, 7] },
      { call: "mknod", args: [`${r}/dev/tty`, chr, 5, 0] },
      { call: "mknod", args: [`${r}/dev/zero`, chr, 1, 5] },
      { call: "mknod", args: [`${r}/dev/urandom`, chr, 1, 9] },
      { call: "umask", args: [0o022] },
      // pivot_root(".", ".") and the old root made rslave and detached
      { call: "open", args: ["/", 0o200000 | 0o10000000 | 0o2000000] },
      { call: "chdir", args: [r] },
      { call: "pivotRoot", args: [".", "."] },
      { call: "fchdir", args: [100] },
      { call: "mount", args: ["", ".", "", MS.SLAVE | MS.REC, null] },
      { call: "umount2", args: [".", MNT_DETACH] },
      { call: "chdir", args: ["/"] },
      { call: "close", args: [100] },
      // read-only paths (those present), then masked ones: a directory gets a tmpfs, a file /dev/null
      { call: "mount", args: ["/proc/sys", "/proc/sys", "", MS.BIND | MS.REC, null] },
      { call: "mount", args: ["/proc/sys", "/proc/sys", "", MS.BIND | MS.REMOUNT | MS.RDONLY, null] },
      { call: "mount", args: ["/proc/sysrq-trigger", "/proc/sysrq-trigger", "", MS.BIND | MS.REC, null] },
      { call: "mount", args: ["/proc/sysrq-trigger", "/proc/sysrq-trigger", "", MS.BIND | MS.REMOUNT | MS.RDONLY, null] },
      { call: "mount", args: ["tmpfs", "/proc/acpi", "tmpfs", MS.RDONLY, null] },
      { call: "mount", args: ["/dev/null", "/proc/kcore", "", MS.BIND, null] },
      { call: "mount", args: ["tmpfs", "/sys/firmware", "tmpfs", MS.RDONLY, null] },
      // root.readonly, last
      { call: "mount", args: ["", "/", "", MS.BIND | MS.REMOUNT | MS.RDONLY, null] },
    ]);

    const table = fake.mountTable();
    assert.deepEqual(
      table.map((m) => m.target),
      ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/proc/sys", "/proc/sysrq-trigger", "/proc/acpi", "/proc/kcore", "/sys/firmware"],
    );
    assert.equal(table[0]!.flags, MS.RDONLY, "/ is read-only");
    assert.equal(fake.oldRootMounts(), undefined, "the old root was detached");

    // /dev as runc leaves it
    assert.equal(readlinkSync(join(r, "dev/ptmx")), "pts/ptmx");
    assert.equal(readlinkSync(join(r, "dev/fd")), "/proc/self/fd");
    assert.equal(readlinkSync(join(r, "dev/stdin")), "/proc/self/fd/0");
    assert.equal(readlinkSync(join(r, "dev/stdout")), "/proc/self/fd/1");
    assert.equal(readlinkSync(join(r, "dev/stderr")), "/proc/self/fd/2");
    // /dev/core only where the host kernel has /proc/kcore
    assert.equal(lstatSync(join(r, "dev/core"), { throwIfNoEntry: false })?.isSymbolicLink() ?? false, existsSync("/proc/kcore"));
  });
});

describe("bind mounts", () => {
  test("ro: the bind, its propagation, then a remount with the flags (runc's order)", () => {
    const r = rootfs();
    const src = join(scratch, "bind-src");
    mkdirSync(src, { recursive: true });
    const fake = new FakeSyscalls();
    mountAll(fake, spec([{ destination: "/data", type: "bind", source: src, options: ["rbind", "ro", "nosuid", "rprivate"] }]), { rootfs: r });
    const flags = MS.BIND | MS.REC | MS.RDONLY | MS.NOSUID;
    assert.deepEqual(mountCallsAfterRoot(fake), [
      [src, `${r}/data`, "bind", flags, null],
      ["", `${r}/data`, "", MS.PRIVATE | MS.REC, null],
      ["", `${r}/data`, "", flags | MS.REMOUNT, null],
    ]);
    assert.ok(lstatSync(join(r, "data")).isDirectory());
    assert.equal(fake.mountTable().at(-1)!.flags, MS.RDONLY | MS.NOSUID);
  });

  test("without flags there is no remount; a file source gets an empty file to land on", () => {
    const r = rootfs();
    const file = join(scratch, "resolv.conf");
    writeFileSync(file, "nameserver 10.0.0.1\n");
    const fake = new FakeSyscalls();
    mountAll(fake, spec([{ destination: "/etc/resolv.conf", type: "bind", source: file, options: ["rbind"] }]), { rootfs: r });
    assert.deepEqual(mountCallsAfterRoot(fake), [[file, `${r}/etc/resolv.conf`, "bind", MS.BIND | MS.REC, null]]);
    assert.ok(lstatSync(join(r, "etc/resolv.conf")).isFile());
  });

  test("a relative source is taken from the bundle; type bind alone means a bind", () => {
    const r = rootfs();
    const bundle = join(r, "..");
    mkdirSync(join(bundle, "vol"));
    const fake = new FakeSyscalls();
    mountAll(fake, spec([{ destination: "/vol", type: "bind", source: "vol" }]), { rootfs: r, bundle });
    assert.deepEqual(mountCallsAfterRoot(fake), [[join(bundle, "vol"), `${r}/vol`, "bind", MS.BIND, null]]);
  });

  test("a refused remount is retried with the source's locked flags", () => {
    const r = rootfs();
    const src = join(scratch, "locked-src");
    mkdirSync(src, { recursive: true });
    const fake = new FakeSyscalls().seedMount({ target: src, fstype: "ext4", flags: MS.NOSUID | MS.NODEV | MS.RELATIME });
    fake.failOn("mount", "EPERM", { match: (a) => ((a[3] as number) & MS.REMOUNT) !== 0, times: 1 });
    mountAll(fake, spec([{ destination: "/data", type: "bind", source: src, options: ["bind", "ro"] }]), { rootfs: r, mountFlagsOf: fake.mountFlagsOf });
    const calls = mountCallsAfterRoot(fake);
    assert.equal(calls.length, 3);
    assert.equal(calls[2]![3], MS.BIND | MS.RDONLY | MS.REMOUNT | MS.NOSUID | MS.NODEV | MS.RELATIME);
  });

  test("asking to clear a locked flag is refused", () => {
    const r = rootfs();
    const src = join(scratch, "locked-src2");
    mkdirSync(src, { recursive: true });
    const fake = new FakeSyscalls().seedMount({ target: src, fstype: "ext4", flags: MS.NODEV });
    fake.failOn("mount", "EPERM", { match: (a) => ((a[3] as number) & MS.REMOUNT) !== 0 });
    assert.throws(
      () => mountAll(fake, spec([{ destination: "/data", type: "bind", source: src, options: ["bind", "dev"] }]), { rootfs: r, mountFlagsOf: fake.mountFlagsOf }),
      /cannot clear flags the kernel locked/,
    );
  });

  test("a missing source is refused, naming it and the destination", () => {
    const r = rootfs();
    const missing = join(scratch, "no-such-dir");
    const fake = new FakeSyscalls();
    assert.throws(
      () => mountAll(fake, spec([{ destination: "/data", type: "bind", source: missing, options: ["rbind"] }]), { rootfs: r }),
      (err: unknown) => err instanceof NotFoundError && err.message.includes(missing) && err.message.includes("/data") && /does not exist/.test(err.message),
    );
    assert.equal(mountCallsAfterRoot(fake).length, 0);
    assert.equal(existsSync(join(r, "data")), false);
  });

  test("a file-system option on a bind mount is refused, naming it, before anything is mounted", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    assert.throws(
      () => mountAll(fake, spec([{ destination: "/data", source: scratch, options: ["rbind", "mode=755"] }]), { rootfs: r }),
      (err: unknown) => err instanceof InvalidArgumentError && err.message.includes('"mode=755"') && err.message.includes("/data"),
    );
    assert.equal(fake.calls.length, 0);
  });

  test("an unsupported option is refused before anything is mounted", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    const s = spec([
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/data", source: scratch, options: ["rbind", "rro"] },
    ]);
    assert.throws(() => mountAll(fake, s, { rootfs: r }), (err: unknown) => err instanceof UnimplementedError && err.message.includes('"rro"'));
    assert.equal(fake.calls.length, 0);
  });
});

describe("destinations", () => {
  test("a destination that is a symlink to /etc resolves inside the rootfs", () => {
    const r = rootfs();
    mkdirSync(join(r, "etc"));
    symlinkSync("/etc", join(r, "config"));
    symlinkSync("../../../../../../../etc", join(r, "up"));
    const fake = new FakeSyscalls();
    mountAll(
      fake,
      spec([
        { destination: "/config", type: "tmpfs", source: "tmpfs" },
        { destination: "/up/sub", type: "tmpfs", source: "tmpfs" },
      ]),
      { rootfs: r },
    );
    const targets = mountCallsAfterRoot(fake).map((a) => a[1]);
    assert.deepEqual(targets, [`${r}/etc`, `${r}/etc/sub`]);
    assert.ok(lstatSync(join(r, "etc/sub")).isDirectory());
  });

  test("proc and sysfs are never mounted through a symlink", () => {
    const r = rootfs();
    symlinkSync("/tmp", join(r, "proc"));
    const fake = new FakeSyscalls();
    assert.throws(() => mountAll(fake, spec([{ destination: "/proc", type: "proc", source: "proc" }]), { rootfs: r }), /ordinary directory/);
  });

  test("nothing but procfs on /proc, and nothing below it but lxcfs's files", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    assert.throws(() => mountAll(fake, spec([{ destination: "/proc", type: "tmpfs", source: "tmpfs" }]), { rootfs: r }), /not of type proc/);
    assert.throws(() => mountAll(fake, spec([{ destination: "/proc/foo", type: "tmpfs", source: "tmpfs" }]), { rootfs: r }), /inside \/proc/);
    const cpuinfo = join(scratch, "cpuinfo");
    writeFileSync(cpuinfo, "");
    mountAll(fake, spec([{ destination: "/proc/cpuinfo", source: cpuinfo, options: ["bind"] }]), { rootfs: r });
  });

  test("the rootfs itself is not a mount point for a spec mount", () => {
    const r = rootfs();
    assert.throws(() => mountAll(new FakeSyscalls(), spec([{ destination: "/", type: "tmpfs", source: "tmpfs" }]), { rootfs: r }), /top of the rootfs/);
  });

  test("a tmpfs asked read-only is mounted writable and remounted read-only at the end", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    const s = spec([{ destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["ro", "nosuid"] }]);
    prepareRootfs(fake, s, { rootfs: r, containerRoot: r, mountFlagsOf: fake.mountFlagsOf });
    const mounts = fake.callsOf("mount");
    assert.deepEqual(mounts[3], ["tmpfs", `${r}/scratch`, "tmpfs", MS.NOSUID, null]);
    assert.deepEqual(mounts.at(-1), ["", "/scratch", "", MS.RDONLY | MS.NOSUID | MS.REMOUNT | MS.BIND, null]);
  });
});

describe("root propagation", () => {
  test("rootfsPropagation shared: / made shared, the rootfs's parent private, / shared again after pivot_root", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    prepareRootfs(fake, spec([], { rootfsPropagation: "shared" }), { rootfs: r, containerRoot: r });
    const mounts = fake.callsOf("mount");
    assert.deepEqual(mounts[0], ["", "/", "", MS.SHARED, null]);
    assert.deepEqual(mounts[1], ["", r, "", MS.PRIVATE, null]);
    assert.deepEqual(mounts.at(-1), ["", "/", "", MS.SHARED, null]);
  });

  test("rootfsPropagation slave makes the parent a slave; EINVAL walks up to the mount point", () => {
    const r = rootfs();
    const fake = new FakeSyscalls().failOn("mount", "EINVAL", { match: (a) => a[1] === r, times: 1 });
    mountAll(fake, spec([], { rootfsPropagation: "slave" }), { rootfs: r });
    assert.deepEqual(fake.callsOf("mount"), [
      ["", "/", "", MS.SLAVE, null],
      ["", r, "", MS.SLAVE, null],
      ["", join(r, ".."), "", MS.SLAVE, null],
      [r, r, "bind", MS.BIND | MS.REC, null],
    ]);
  });

  test("an unknown propagation is refused before anything is mounted", () => {
    const fake = new FakeSyscalls();
    const s = spec([], { rootfsPropagation: "sideways" as "private" });
    assert.throws(() => mountAll(fake, s, { rootfs: rootfs() }), /rootfsPropagation "sideways"/);
    assert.equal(fake.calls.length, 0);
  });
});

describe("devices", () => {
  test("made under umask 0 with the spec's type, numbers, mode and owner; securejoined; ptmx left to devpts", { skip: !isRoot && "needs root to chown" }, () => {
    const r = rootfs();
    mkdirSync(join(r, "dev/sub"), { recursive: true });
    mkdirSync(join(r, "elsewhere"));
    symlinkSync("/elsewhere", join(r, "dev/link"));
    const fake = new FakeSyscalls();
    const s = spec([], {
      devices: [
        { path: "/dev/null", type: "c", major: 1, minor: 3, fileMode: 0o600 },
        { path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o20640, uid: 1000, gid: 1001 },
        { path: "/dev/sub/sda", type: "b", major: 8, minor: 0 },
        { path: "/dev/link/kvm", type: "u", major: 10, minor: 232 },
        { path: "/dev/fifo", type: "p" },
        { path: "/dev/ptmx", type: "c", major: 5, minor: 2 },
      ],
    });
    createDevices(fake, s, { rootfs: r });
    const calls = fake.calls.filter((c) => c.call === "umask" || c.call === "mknod");
    assert.deepEqual(calls[0], { call: "umask", args: [0] });
    assert.deepEqual(calls.at(-1), { call: "umask", args: [0o022] });
    assert.deepEqual(fake.callsOf("mknod"), [
      // defaults, less the one the spec overrides, then the spec's
      [`${r}/dev/random`, S_IFCHR | 0o666, 1, 8],
      [`${r}/dev/full`, S_IFCHR | 0o666, 1, 7],
      [`${r}/dev/tty`, S_IFCHR | 0o666, 5, 0],
      [`${r}/dev/zero`, S_IFCHR | 0o666, 1, 5],
      [`${r}/dev/urandom`, S_IFCHR | 0o666, 1, 9],
      [`${r}/dev/null`, S_IFCHR | 0o600, 1, 3],
      [`${r}/dev/fuse`, S_IFCHR | 0o640, 10, 229],
      [`${r}/dev/sub/sda`, 0o060000 | 0o666, 8, 0],
      [`${r}/elsewhere/kvm`, S_IFCHR | 0o666, 10, 232],
      [`${r}/dev/fifo`, 0o010000 | 0o666, 0, 0],
    ]);
    const fuse = lstatSync(join(r, "dev/fuse"));
    assert.equal(fuse.uid, 1000);
    assert.equal(fuse.gid, 1001);
    assert.equal(readlinkSync(join(r, "dev/ptmx")), "pts/ptmx");
  });

  test("mknod refused (EPERM) falls back to binding the host's node over an empty file", () => {
    const r = rootfs();
    mkdirSync(join(r, "dev"));
    const fake = new FakeSyscalls().failOn("mknod", "EPERM", { match: (a) => a[0] === `${r}/dev/tty` });
    createDevices(fake, spec([]), { rootfs: r });
    assert.ok(fake.callsOf("mount").some((a) => a[0] === "/dev/tty" && a[1] === `${r}/dev/tty` && a[3] === MS.BIND));
    assert.ok(lstatSync(join(r, "dev/tty")).isFile());
  });

  test("a bind-mounted /dev is left alone", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    createDevices(fake, spec([{ destination: "/dev", source: "/dev", options: ["rbind"] }]), { rootfs: r });
    assert.equal(fake.calls.length, 0);
    assert.equal(existsSync(join(r, "dev")), false);
  });

  test("an unknown device type is refused, naming the device", () => {
    const r = rootfs();
    assert.throws(
      () => createDevices(new FakeSyscalls(), spec([], { devices: [{ path: "/dev/x", type: "x" as "c" }] }), { rootfs: r }),
      (err: unknown) => err instanceof InvalidArgumentError && err.message.includes("/dev/x"),
    );
  });
});

describe("masked and read-only paths", () => {
  test("a file gets /dev/null, a directory a read-only tmpfs; missing and repeated paths are skipped", { skip: !isRoot && "needs root for mknod" }, () => {
    const r = rootfs();
    realDevNull(r);
    mkdirSync(join(r, "proc/acpi"), { recursive: true });
    writeFileSync(join(r, "proc/kcore"), "");
    symlinkSync("/proc/kcore", join(r, "proc/alias"));
    const fake = new FakeSyscalls();
    maskPaths(fake, ["/proc/kcore", "/proc/acpi", "/proc/nothing", "/proc/alias", "/proc/kcore"], { containerRoot: r });
    assert.deepEqual(fake.callsOf("mount"), [
      ["/dev/null", "/proc/kcore", "", MS.BIND, null],
      ["tmpfs", "/proc/acpi", "tmpfs", MS.RDONLY, null],
    ]);
  });

  test("masking refuses a /dev/null that is not the null device", () => {
    const r = rootfs();
    mkdirSync(join(r, "dev"));
    writeFileSync(join(r, "dev/null"), "");
    assert.throws(() => maskPaths(new FakeSyscalls(), ["/proc/kcore"], { containerRoot: r }), FailedPreconditionError);
  });

  test("read-only paths keep the nosuid/nodev/noexec they had; missing ones are skipped", () => {
    const r = rootfs();
    mkdirSync(join(r, "proc/sys"), { recursive: true });
    const fake = new FakeSyscalls().seedMount({ target: "/proc", fstype: "proc", flags: MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME });
    readonlyPaths(fake, ["/proc/sys", "/proc/bus"], { containerRoot: r, mountFlagsOf: fake.mountFlagsOf });
    assert.deepEqual(fake.callsOf("mount"), [
      ["/proc/sys", "/proc/sys", "", MS.BIND | MS.REC, null],
      ["/proc/sys", "/proc/sys", "", MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.BIND | MS.REMOUNT | MS.RDONLY, null],
    ]);
  });

  test("a read-only path that vanishes under the bind (ENOENT) is skipped", () => {
    const r = rootfs();
    mkdirSync(join(r, "proc/irq"), { recursive: true });
    const fake = new FakeSyscalls().failOn("mount", "ENOENT");
    readonlyPaths(fake, ["/proc/irq"], { containerRoot: r, mountFlagsOf: fake.mountFlagsOf });
    assert.equal(fake.callsOf("mount").length, 1);
  });

  test("the default lists are containerd's", () => {
    assert.ok(DEFAULT_MASKED_PATHS.includes("/sys/devices/virtual/powercap"));
    assert.equal(DEFAULT_MASKED_PATHS.length, 11);
    assert.deepEqual(DEFAULT_READONLY_PATHS, ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
  });
});

describe("read-only root", () => {
  test("retried with the flags / already has when the plain remount is refused", () => {
    const fake = new FakeSyscalls().seedMount({ target: "/", fstype: "overlay", flags: MS.NOSUID | MS.NODEV });
    fake.failOn("mount", "EPERM", { times: 1 });
    remountRootReadonly(fake, { mountFlagsOf: fake.mountFlagsOf });
    assert.deepEqual(fake.callsOf("mount"), [
      ["", "/", "", MS.BIND | MS.REMOUNT | MS.RDONLY, null],
      ["", "/", "", MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV, null],
    ]);
  });
});

describe("cgroup mounts", () => {
  const cgroupSpec = (namespaces: NonNullable<Spec["linux"]>["namespaces"]) =>
    spec([{ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] }], { namespaces });
  const ro = MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RELATIME | MS.RDONLY;
  const hierarchies = [
    { mountpoint: "/sys/fs/cgroup/cpu,cpuacct", path: "/sys/fs/cgroup/cpu,cpuacct/berth/c1" },
    { mountpoint: "/sys/fs/cgroup/memory", path: "/sys/fs/cgroup/memory/berth/c1" },
    { mountpoint: "/sys/fs/cgroup/systemd", path: "/sys/fs/cgroup/systemd/berth/c1" },
  ];

  test("v1 without a cgroup namespace: a tmpfs, then each hierarchy's own cgroup bound read-only, and controller links", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    const present = hierarchies.map((h) => ({ ...h, path: join(scratch, "cg", h.path) }));
    for (const h of present) mkdirSync(h.path, { recursive: true });
    mountAll(fake, cgroupSpec([{ type: "mount" }]), { rootfs: r, cgroupLayout: "hybrid", cgroupV1: present });
    const d = `${r}/sys/fs/cgroup`;
    const bind = MS.BIND | MS.REC | ro;
    assert.deepEqual(mountCallsAfterRoot(fake), [
      ["tmpfs", d, "tmpfs", MS.NOEXEC | MS.NOSUID | MS.NODEV, "mode=0755,mode=755"],
      [present[0]!.path, `${d}/cpu,cpuacct`, "bind", bind, null],
      ["", `${d}/cpu,cpuacct`, "", bind | MS.REMOUNT, null],
      [present[1]!.path, `${d}/memory`, "bind", bind, null],
      ["", `${d}/memory`, "", bind | MS.REMOUNT, null],
      [present[2]!.path, `${d}/systemd`, "bind", bind, null],
      ["", `${d}/systemd`, "", bind | MS.REMOUNT, null],
    ]);
    assert.equal(readlinkSync(`${d}/cpu`), "cpu,cpuacct");
    assert.equal(readlinkSync(`${d}/cpuacct`), "cpu,cpuacct");
  });

  test("v1 in a cgroup namespace: fresh cgroup mounts per hierarchy", () => {
    const r = rootfs();
    const fake = new FakeSyscalls();
    mountAll(fake, cgroupSpec([{ type: "mount" }, { type: "cgroup" }]), { rootfs: r, cgroupLayout: "v1", cgroupV1: hierarchies });
    const d = `${r}/sys/fs/cgroup`;
    const fresh = MS.NOEXEC | MS.NOSUID | MS.NODEV | MS.RDONLY;
    assert.deepEqual(mountCallsAfterRoot(fake).slice(1), [
      ["cgroup", `${d}/cpu,cpuacct`, "cgroup", fresh, "cpu,cpuacct"],
      ["cgroup", `${d}/memory`, "cgroup", fresh, "memory"],
      ["systemd", `${d}/systemd`, "cgroup", fresh, "name=systemd"],
    ]);
  });

  test("v1 without the hierarchy list is refused with a reason", () => {
    assert.throws(() => mountAll(new FakeSyscalls(), cgroupSpec([]), { rootfs: rootfs(), cgroupLayout: "v1" }), /no v1 hierarchies/);
  });

  test("v2 refused with EPERM falls back to binding the container's cgroup", () => {
    const r = rootfs();
    const own = join(scratch, "cg2/berth/c1");
    mkdirSync(own, { recursive: true });
    const fake = new FakeSyscalls().failOn("mount", "EPERM", { match: (a) => a[2] === "cgroup2" });
    mountAll(fake, cgroupSpec([{ type: "cgroup" }]), { rootfs: r, cgroupLayout: "v2", cgroup2Path: own });
    const d = `${r}/sys/fs/cgroup`;
    assert.deepEqual(mountCallsAfterRoot(fake), [
      ["cgroup", d, "cgroup2", ro, null],
      [own, d, "bind", MS.BIND | ro, null],
      ["", d, "", MS.BIND | ro | MS.REMOUNT, null],
    ]);
  });
});

describe("mountFlagsFromMountinfo", () => {
  const info = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "25 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
    "26 25 0:5 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw",
    "30 22 0:40 / /mnt/with\\040space rw,noatime - tmpfs tmpfs rw,sync",
    "31 22 0:41 / /strict rw - tmpfs tmpfs ro",
  ].join("\n");

  test("per-mount and superblock options, the nearest mount winning", () => {
    assert.equal(mountFlagsFromMountinfo("/proc/sys/kernel", info), MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME);
    assert.equal(mountFlagsFromMountinfo("/proc", info), MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME);
    assert.equal(mountFlagsFromMountinfo("/mnt/with space", info), MS.NOATIME | MS.SYNCHRONOUS);
    assert.equal(mountFlagsFromMountinfo("/strict/x", info), MS.STRICTATIME | MS.RDONLY);
    assert.equal(mountFlagsFromMountinfo("/usr", info), MS.RELATIME);
  });
});

test("config validation accepts the recursive rootfsPropagation names containerd's CRI writes", async () => {
  const { validateSpec } = await import("../../runtime/oci/validate");
  const { defaultSpec } = await import("../../runtime/oci/default-spec");
  const s = defaultSpec();
  s.linux!.rootfsPropagation = "rslave" as never;
  assert.equal((await validateSpec(s, "config.json")).linux?.rootfsPropagation, "rslave");
  s.linux!.rootfsPropagation = "rbogus" as never;
  await assert.rejects(validateSpec(s, "config.json"), /\/linux\/rootfsPropagation/);
});
