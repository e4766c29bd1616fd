// The OCI spec of a CRI container follows containerd's rules; every spec built validates against
// the runtime-spec schema.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type * as cri from "../../runtime/api/cri-v1";
import { Code } from "../../runtime/errors";
import { parseMountinfo } from "../../runtime/cgroups/detect";
import { buildContainerSpec, type ContainerSpecInput, capabilitiesOf, hostMountOf, processArgs, processEnv, processUser, stopSignalOf, withTerminalEnv } from "../../runtime/oci/spec-from-cri";
import { hostDevices } from "../../runtime/oci/host-devices";
import type { Spec } from "../../runtime/oci/spec-types";
import { currentCapabilities, DOCKER_DEFAULT_CAPS } from "../../runtime/security/capabilities";
import { validateRuntimeSpecDoc } from "../support/oci-schemas";

const work = mkdtempSync(join(tmpdir(), "berth-spec-cri-"));
const rootfs = join(work, "rootfs");
mkdirSync(join(rootfs, "etc"), { recursive: true });
writeFileSync(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
writeFileSync(join(rootfs, "etc", "group"), "root:x:0:\napp:x:1000:\nvideo:x:44:app\naudio:x:29:app,other\n");
after(() => rmSync(work, { recursive: true, force: true }));

function input(config: cri.CriRequest<cri.ContainerConfig>, image: ContainerSpecInput["image"]["config"] = { Cmd: ["sh"] }, pod: cri.CriRequest<cri.PodSandboxConfig> = {}): ContainerSpecInput {
  return {
    containerId: "c1",
    config: { metadata: { name: "c" }, image: { image: "busybox" }, ...config },
    sandboxConfig: { metadata: { name: "p", namespace: "ns", uid: "u" }, ...pod },
    image: { id: "sha256:1", name: "busybox:latest", config: image },
    rootfs,
    sandbox: { id: "s1", namespaces: { network: "/run/berth/ns/net/s1", ipc: "/run/berth/ns/ipc/s1", uts: "/run/berth/ns/uts/s1" }, hostname: "p", files: { hosts: "/run/berth/pods/s1/hosts", resolvConf: "/run/berth/pods/s1/resolv.conf", hostname: "/run/berth/pods/s1/hostname", shm: "/run/berth/pods/s1/shm" } },
    cgroupsPath: "berth/pod/c1",
  };
}

function build(i: ContainerSpecInput): Spec {
  const spec = buildContainerSpec(i);
  validateRuntimeSpecDoc("config-schema.json", spec);
  return spec;
}

describe("process", () => {
  test("CRI command replaces the image entrypoint and drops its cmd; CRI args replace cmd", () => {
    const image = { Entrypoint: ["/entry"], Cmd: ["default"] };
    assert.deepEqual(processArgs({}, image), ["/entry", "default"]);
    assert.deepEqual(processArgs({ args: ["x"] }, image), ["/entry", "x"]);
    assert.deepEqual(processArgs({ command: ["/bin/other"] }, image), ["/bin/other"]);
    assert.deepEqual(processArgs({ command: ["/bin/other"], args: ["y"] }, image), ["/bin/other", "y"]);
    assert.throws(() => processArgs({}, {}), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
  });

  test("CRI envs override the image's by key; PATH and HOSTNAME are filled in", () => {
    assert.deepEqual(processEnv({ envs: [{ key: "A", value: Buffer.from("cri") }, { key: "C", value: Buffer.from("3") }] }, { Env: ["A=image", "B=2"] }, "p"), ["A=cri", "B=2", "C=3", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=p"]);
  });

  test("users: run_as_user over the image USER, names from the image's /etc/passwd, group memberships from /etc/group", () => {
    assert.deepEqual(processUser({}, {}, rootfs), { uid: 0, gid: 0 });
    assert.deepEqual(processUser({}, { User: "app" }, rootfs), { uid: 1000, gid: 1000, additionalGids: [44, 29] });
    assert.deepEqual(processUser({ linux: { securityContext: { runAsUser: { value: "1000" }, runAsGroup: { value: "5" }, supplementalGroups: ["7"] } } }, { User: "root" }, rootfs), { uid: 1000, gid: 5, additionalGids: [44, 29, 7] });
    assert.deepEqual(processUser({ linux: { securityContext: { runAsUsername: "app", supplementalGroupsPolicy: "Strict", supplementalGroups: ["7"] } } }, {}, rootfs), { uid: 1000, gid: 1000, additionalGids: [7] });
    assert.deepEqual(processUser({}, { User: "1000:44" }, rootfs), { uid: 1000, gid: 44, additionalGids: [29] });
    assert.throws(() => processUser({}, { User: "nobody" }, rootfs), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /nobody/.test(e.message));
  });

  test("a run_as_user outside runc's range is refused: (uid_t)-1 would keep root", () => {
    assert.throws(
      () => processUser({ linux: { securityContext: { runAsUser: { value: "4294967295" } } } }, {}, rootfs),
      (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /process\.user\.uid 4294967295 is out of range/.test(e.message),
    );
  });

  test("a symlinked /etc/passwd that points outside the rootfs is read inside it", () => {
    const other = join(work, "evil");
    mkdirSync(join(other, "etc"), { recursive: true });
    writeFileSync(join(other, "etc", "passwd"), "root:x:0:0::/:/bin/sh\n");
    symlinkSync("/etc/passwd", join(other, "etc", "passwd.link"));
    // /etc/passwd → /etc/passwd.real inside the rootfs, never the host's
    const r2 = join(work, "rootfs2");
    mkdirSync(join(r2, "etc"), { recursive: true });
    writeFileSync(join(r2, "etc", "passwd.real"), "svc:x:555:555::/:/bin/sh\n");
    symlinkSync("/etc/passwd.real", join(r2, "etc", "passwd"));
    assert.deepEqual(processUser({}, { User: "svc" }, r2), { uid: 555, gid: 555 });
  });

  test("the stop signal: CRI stop_signal, else the image's STOPSIGNAL, else SIGTERM", () => {
    assert.equal(stopSignalOf({ stopSignal: "SIGINT" }, { StopSignal: "SIGQUIT" }), 2);
    assert.equal(stopSignalOf({}, { StopSignal: "SIGQUIT" }), 3);
    assert.equal(stopSignalOf({}, { StopSignal: "9" }), 9);
    assert.equal(stopSignalOf({ stopSignal: "RUNTIME_DEFAULT" }, {}), 15);
  });
});

describe("security", () => {
  test("Docker's 14 capabilities by default; ALL in add grants all, ALL in drop clears the defaults before adds", () => {
    assert.deepEqual(new Set(capabilitiesOf({})), new Set(DOCKER_DEFAULT_CAPS));
    const current = () => ["CAP_CHOWN", "CAP_SYS_ADMIN"];
    assert.deepEqual(capabilitiesOf({ capabilities: { addCapabilities: ["ALL"] } }, current), current(), "ALL is what the daemon has (containerd's WithAllCurrentCapabilities)");
    assert.deepEqual(capabilitiesOf({ privileged: true }, current), current());
    assert.deepEqual(currentCapabilities("CapEff:\t0000000000000003\n"), ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
    assert.deepEqual(capabilitiesOf({ capabilities: { dropCapabilities: ["ALL"], addCapabilities: ["NET_ADMIN"] } }), ["CAP_NET_ADMIN"]);
    assert.ok(!capabilitiesOf({ capabilities: { dropCapabilities: ["CHOWN"] } }).includes("CAP_CHOWN"));
    assert.throws(() => capabilitiesOf({ capabilities: { addCapabilities: ["NOT_A_CAP"] } }), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
  });

  test("seccomp: none unless asked, Docker's profile for RuntimeDefault and runtime/default, none when privileged", () => {
    assert.equal(build(input({})).linux!.seccomp, undefined);
    assert.equal(build(input({ linux: { securityContext: { seccomp: { profileType: "RuntimeDefault" } } } })).linux!.seccomp!.defaultAction, "SCMP_ACT_ERRNO");
    assert.ok(build(input({ linux: { securityContext: { seccompProfilePath: "runtime/default" } } })).linux!.seccomp);
    assert.equal(build(input({ linux: { securityContext: { privileged: true, seccomp: { profileType: "RuntimeDefault" } } } })).linux!.seccomp, undefined);
    const local = join(work, "profile.json");
    writeFileSync(local, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] }));
    assert.equal(build(input({ linux: { securityContext: { seccomp: { profileType: "Localhost", localhostRef: local } } } })).linux!.seccomp!.defaultAction, "SCMP_ACT_ALLOW");
    assert.throws(() => build(input({ linux: { securityContext: { seccomp: { profileType: "Localhost", localhostRef: "relative.json" } } } })), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
  });

  test("privileged: every capability, all devices, no masked or read-only paths, writable sysfs", () => {
    const spec = build(input({ linux: { securityContext: { privileged: true } } }));
    assert.ok(spec.process!.capabilities!.bounding!.includes("CAP_SYS_ADMIN"));
    assert.deepEqual(spec.linux!.maskedPaths, []);
    assert.deepEqual(spec.linux!.readonlyPaths, []);
    assert.deepEqual(spec.linux!.resources!.devices![0], { allow: true, access: "rwm" });
    assert.ok(spec.mounts!.find((m) => m.destination === "/sys")!.options!.includes("rw"));
    // The host's devices, as containerd's WithHostDevices; one the CRI names replaces the host's.
    const host = [
      { path: "/dev/kmsg", type: "c" as const, major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 },
      { path: "/dev/null", type: "c" as const, major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
    ];
    const withHost = build({ ...input({ linux: { securityContext: { privileged: true } }, devices: [{ containerPath: "/dev/null", hostPath: "/dev/zero", permissions: "r" }] }), hostDevices: () => host });
    assert.deepEqual(
      withHost.linux!.devices!.map((d) => `${d.path} ${d.major}:${d.minor}`),
      ["/dev/kmsg 1:11", "/dev/null 1:5"],
    );
    assert.equal(build({ ...input({}), hostDevices: () => host }).linux!.devices, undefined, "not for an unprivileged container");
  });

  test("the host's devices are read from /dev as containerd reads them: nodes only, without pts, shm and the console", () => {
    const devices = hostDevices();
    assert.ok(devices.some((d) => d.path === "/dev/null" && d.type === "c" && d.major === 1 && d.minor === 3));
    assert.ok(!devices.some((d) => d.path.startsWith("/dev/pts/") || d.path.startsWith("/dev/shm/") || d.path === "/dev/console"));
    assert.ok(!devices.some((d) => d.path === "/dev/fd" || d.path === "/dev/stdin"), "no symlinks");
  });

  test("kubelet's masked and read-only path lists replace containerd's defaults; read-only rootfs makes the pod files read-only too", () => {
    const spec = build(input({ linux: { securityContext: { maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"], readonlyRootfs: true, noNewPrivs: true } } }));
    assert.deepEqual(spec.linux!.maskedPaths, ["/proc/kcore"]);
    assert.deepEqual(spec.linux!.readonlyPaths, ["/proc/sys"]);
    assert.equal(spec.root!.readonly, true);
    assert.equal(spec.process!.noNewPrivileges, true);
    assert.ok(spec.mounts!.find((m) => m.destination === "/etc/hosts")!.options!.includes("ro"));
  });
});

describe("namespaces, mounts and resources", () => {
  test("the pod's network, IPC and UTS namespaces are joined by path; pid POD joins the pod's, CONTAINER gets its own, NODE the host's", () => {
    const withPid = input({});
    withPid.sandbox.namespaces.pid = "/proc/42/ns/pid";
    const ns = (i: ContainerSpecInput) => build(i).linux!.namespaces!;
    assert.deepEqual(ns(withPid), [{ type: "mount" }, { type: "pid", path: "/proc/42/ns/pid" }, { type: "network", path: "/run/berth/ns/net/s1" }, { type: "ipc", path: "/run/berth/ns/ipc/s1" }, { type: "uts", path: "/run/berth/ns/uts/s1" }]);
    assert.deepEqual(ns(input({ linux: { securityContext: { namespaceOptions: { pid: "CONTAINER" } } } }))[1], { type: "pid" });
    assert.ok(!ns(input({ linux: { securityContext: { namespaceOptions: { pid: "NODE" } } } })).some((n) => n.type === "pid"));
  });

  test("CRI mounts keep their propagation and read-only flag, shallower first; a CRI mount over /etc/hosts replaces the pod's", () => {
    const mounts = [
      { containerPath: "/data/sub", hostPath: join(work, "a"), propagation: "PROPAGATION_BIDIRECTIONAL" as const },
      { containerPath: "/data", hostPath: join(work, "b"), readonly: true, propagation: "PROPAGATION_HOST_TO_CONTAINER" as const },
      { containerPath: "/etc/hosts", hostPath: join(work, "hosts") },
    ];
    // The host's root, shared (this machine's is private: the check would refuse BIDIRECTIONAL).
    const hostMounts = () => parseMountinfo("1 0 8:1 / / rw shared:1 - ext4 /dev/a rw");
    const spec = build({ ...input({ mounts }), hostMounts });
    assert.equal(spec.linux!.rootfsPropagation, "shared", "containerd's rule: the root is shared with a BIDIRECTIONAL mount");
    assert.equal(build({ ...input({ mounts: mounts.slice(1) }), hostMounts }).linux!.rootfsPropagation, "slave", "a slave with HOST_TO_CONTAINER");
    assert.throws(() => build({ ...input({ mounts }), hostMounts: () => parseMountinfo("1 0 8:1 / / rw - ext4 /dev/a rw") }), /BIDIRECTIONAL: .* which is not shared/);
    const binds = spec.mounts!.filter((m) => m.source?.startsWith(work));
    assert.deepEqual(
      binds.map((m) => [m.destination, m.options]),
      [
        ["/data", ["rbind", "rslave", "ro"]],
        ["/data/sub", ["rbind", "rshared", "rw"]],
        ["/etc/hosts", ["rbind", "rprivate", "rw"]],
      ],
    );
    assert.equal(spec.mounts!.filter((m) => m.destination === "/etc/hosts").length, 1);
    assert.throws(() => build(input({ mounts: [{ containerPath: "/x", hostPath: "relative" }] })), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /host_path/.test(e.message));
  });

  test("resources become linux.resources; the pod's sysctls and hostname, containerd's annotations", () => {
    const spec = build(
      input({ linux: { resources: { cpuShares: "512", cpuQuota: "50000", cpuPeriod: "100000", memoryLimitInBytes: String(64 << 20), cpusetCpus: "0" } }, annotations: { mine: "1" } }, { Cmd: ["sh"] }, { linux: { sysctls: { "net.ipv4.ip_forward": "0" } } }),
    );
    assert.deepEqual(spec.linux!.resources!.cpu, { shares: 512, quota: 50000, period: 100000, cpus: "0" });
    assert.equal(spec.linux!.resources!.memory!.limit, 64 << 20);
    assert.deepEqual(spec.linux!.sysctl, { "net.ipv4.ip_forward": "0" });
    assert.equal(spec.hostname, "p");
    assert.equal(spec.annotations!["io.kubernetes.cri.sandbox-id"], "s1");
    assert.equal(spec.annotations!["io.kubernetes.cri.container-type"], "container");
    assert.equal(spec.annotations!.mine, "1");
    assert.equal(spec.linux!.cgroupsPath, "berth/pod/c1");
  });
});

describe("mounts berth cannot make", () => {
  test("an image volume, a recursive read-only mount and an idmapped mount are refused, not dropped", () => {
    const m = { containerPath: "/data", hostPath: work };
    const refused = (extra: object, code: number, re: RegExp) =>
      assert.throws(() => build(input({ mounts: [{ ...m, ...extra }] })), (e: { code: number; message: string }) => e.code === code && re.test(e.message));
    refused({ image: { image: "busybox:1.36" } }, Code.UNIMPLEMENTED, /image volume/);
    refused({ readonly: true, recursiveReadOnly: true }, Code.INVALID_ARGUMENT, /recursive_read_only is not supported/);
    refused({ uidMappings: [{ hostId: 1000, containerId: 0, length: 1 }] }, Code.INVALID_ARGUMENT, /idmapped mount/);
  });

  test("a host path's mount is the topmost, longest one containing it (for the propagation check)", () => {
    const info = parseMountinfo(
      [
        "1 0 8:1 / / rw shared:1 - ext4 /dev/a rw",
        "2 1 8:1 /x /mnt rw - ext4 /dev/a rw",
        "3 2 0:5 / /mnt rw shared:7 - tmpfs t rw",
        "4 1 8:1 /y /mntx rw master:1 - ext4 /dev/a rw",
      ].join("\n"),
    );
    assert.deepEqual(hostMountOf("/mnt/a/b", info)?.optional, ["shared:7"], "the mount stacked last on /mnt");
    assert.deepEqual(hostMountOf("/mntx", info)?.optional, ["master:1"]);
    assert.deepEqual(hostMountOf("/srv", info)?.optional, ["shared:1"]);
  });
});

describe("terminal", () => {
  test("a tty container gets TERM=xterm unless its env has a TERM; an exec with a tty always gets TERM=xterm, as in containerd", () => {
    const term = (s: Spec) => s.process!.env!.filter((e) => e.startsWith("TERM="));
    assert.deepEqual(term(build(input({ tty: true }))), ["TERM=xterm"]);
    assert.deepEqual(term(build(input({}))), []);
    assert.deepEqual(term(build(input({ tty: true, envs: [{ key: "TERM", value: Buffer.from("vt100") }] }))), ["TERM=vt100"]);
    assert.deepEqual(withTerminalEnv(["A=1", "TERM=vt100"], true, true), ["A=1", "TERM=xterm"]);
    assert.deepEqual(withTerminalEnv(["A=1"], false, true), ["A=1"]);
  });
});

describe("oom_score_adj", () => {
  test("the CRI's score is the process's; with a floor (containerd's restrict_oom_score_adj) a lower one is raised to it", () => {
    const guaranteed = input({ linux: { resources: { oomScoreAdj: "-997" } } });
    assert.equal(build(guaranteed).process!.oomScoreAdj, -997);
    assert.equal(build({ ...guaranteed, oomScoreAdjFloor: 0 }).process!.oomScoreAdj, undefined, "0, the inherited score, is left unset");
    assert.equal(build({ ...guaranteed, oomScoreAdjFloor: 200 }).process!.oomScoreAdj, 200);
    assert.equal(build({ ...input({ linux: { resources: { oomScoreAdj: "1000" } } }), oomScoreAdjFloor: 0 }).process!.oomScoreAdj, 1000, "a higher score is kept");
  });
});
