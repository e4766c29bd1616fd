// What a container shares with others, against runc: namespaces joined by path (another
// container's network, IPC and UTS; a mount namespace someone else holds), and bind mounts with
// each propagation mode, whose peer groups show in /proc/self/mountinfo.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Spec } from "../../runtime/oci/spec-types";
import { type Bundle, makeBundle, removeBundle, type RunResult, type Runtime, runRuntime } from "../support/bundle";
import { killPid, makeRoots, type Roots, RUNTIMES, removeRoots, runDetached, state, waitForStatus, waitUntil } from "../support/runtime-pair";

let roots: Roots;
let io: string;
const bundles: Bundle[] = [];
const holders: ChildProcess[] = [];
let seq = 0;

before(async () => {
  roots = await makeRoots();
  io = await mkdtemp(join(tmpdir(), "berth-sharing-io-"));
});

after(async () => {
  for (const h of holders) killPid(h.pid);
  await removeRoots(roots);
  for (const b of bundles) await removeBundle(b);
  await rm(io, { recursive: true, force: true });
});

async function bundle(edit: (s: Spec) => void): Promise<Bundle> {
  const b = await makeBundle(edit);
  bundles.push(b);
  return b;
}

/** Creates and starts `sleep 30` as container `id`; returns its init's host PID. */
async function startSleeper(rt: Runtime, id: string, edit?: (s: Spec) => void): Promise<number> {
  const b = await bundle((s) => {
    s.process!.args = ["sleep", "30"];
    edit?.(s);
  });
  const c = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-${id}`);
  assert.equal(c.code, 0, `${rt} create ${id}: ${c.stderr}`);
  assert.equal((await runRuntime(rt, roots[rt], ["start", id])).code, 0);
  return (await state(rt, roots[rt], id)).pid as number;
}

function nsLinks(pid: number | "self", names: string[]): string[] {
  return names.map((n) => readlinkSync(`/proc/${pid}/ns/${n}`));
}

/** A process of the test's own in a new, private mount namespace (killed by PID at the end). */
async function mountNamespaceHolder(): Promise<number> {
  const h = spawn("unshare", ["--mount", "--propagation", "private", "sleep", "60"], { stdio: "ignore" });
  holders.push(h);
  const self = readlinkSync("/proc/self/ns/mnt");
  await waitUntil(() => {
    try {
      return readlinkSync(`/proc/${h.pid}/ns/mnt`) !== self && readFileSync(`/proc/${h.pid}/cmdline`, "utf8").startsWith("sleep");
    } catch {
      return false;
    }
  }, "the mount namespace holder to start");
  return h.pid!;
}

const SHOW_NS = "for n in net ipc uts mnt pid; do readlink /proc/self/ns/$n; done; hostname";

describe("berth runtime joins namespaces by path as runc does", () => {
  test("a container in another's network, IPC and UTS namespaces sees them and their hostname", async () => {
    const seen = {} as Record<Runtime, RunResult>;
    for (const rt of RUNTIMES) {
      const a = `ns-a-${process.pid}-${++seq}`;
      const pidA = await startSleeper(rt, a, (s) => {
        s.hostname = "alpha";
      });
      const b = await bundle((s) => {
        s.process!.args = ["sh", "-c", SHOW_NS];
        for (const [type, name] of [["network", "net"], ["ipc", "ipc"], ["uts", "uts"]] as const) {
          s.linux!.namespaces!.find((n) => n.type === type)!.path = `/proc/${pidA}/ns/${name}`;
        }
        delete s.hostname;
      });
      seen[rt] = await runRuntime(rt, roots[rt], ["run", "--bundle", b.dir, `ns-b-${process.pid}-${++seq}`]);
      assert.equal(seen[rt].code, 0, `${rt}: ${seen[rt].stderr}`);
      const [net, ipc, uts, mnt, pid, hostname] = seen[rt].stdout.trim().split("\n");
      assert.deepEqual([net, ipc, uts], nsLinks(pidA, ["net", "ipc", "uts"]), `${rt}: B is in A's net, ipc and uts namespaces`);
      assert.notEqual(mnt, nsLinks(pidA, ["mnt"])[0], `${rt}: B has a mount namespace of its own`);
      assert.notEqual(pid, nsLinks(pidA, ["pid"])[0], `${rt}: B has a PID namespace of its own`);
      assert.equal(hostname, "alpha");
      assert.equal((await runRuntime(rt, roots[rt], ["delete", "--force", a])).code, 0);
    }
    assert.equal(seen.berth.code, seen.runc.code);
  });

  test("a hostname in the spec is set in a joined UTS namespace", async () => {
    const seen = {} as Record<Runtime, string[]>;
    for (const rt of RUNTIMES) {
      const a = `uts-a-${process.pid}-${++seq}`;
      const pidA = await startSleeper(rt, a, (s) => {
        s.hostname = "alpha";
      });
      const b = await bundle((s) => {
        s.process!.args = ["hostname"];
        s.linux!.namespaces!.find((n) => n.type === "uts")!.path = `/proc/${pidA}/ns/uts`;
        s.hostname = "beta";
      });
      const r = await runRuntime(rt, roots[rt], ["run", "--bundle", b.dir, `uts-b-${process.pid}-${++seq}`]);
      assert.equal(r.code, 0, `${rt}: ${r.stderr}`);
      const inA = await runRuntime(rt, roots[rt], ["exec", a, "hostname"]);
      seen[rt] = [r.stdout, inA.stdout];
      assert.equal((await runRuntime(rt, roots[rt], ["delete", "--force", a])).code, 0);
    }
    assert.deepEqual(seen.berth, seen.runc);
    assert.deepEqual(seen.berth, ["beta\n", "beta\n"]);
  });

  test("a hostname without a UTS namespace is refused", async () => {
    const codes = {} as Record<Runtime, number>;
    for (const rt of RUNTIMES) {
      const b = await bundle((s) => {
        s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "uts");
        s.hostname = "nope";
      });
      const id = `uts-none-${process.pid}-${++seq}`;
      const r = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-${id}`);
      assert.match(r.stderr, /hostname/, `${rt}: ${r.stderr}`);
      assert.ok(!(await runRuntime(rt, roots[rt], ["list", "-q"])).stdout.includes(id));
      codes[rt] = r.code!;
    }
    assert.deepEqual(codes, { runc: 1, berth: 1 });
  });

  test("a container joins a mount namespace by path, and its rootfs is set up in it", async () => {
    const seen = {} as Record<Runtime, string>;
    for (const rt of RUNTIMES) {
      const holder = await mountNamespaceHolder();
      const b = await bundle((s) => {
        s.process!.args = ["sh", "-c", "readlink /proc/self/ns/mnt; ls /; cat /proc/1/cmdline | tr '\\0' ' '"];
        s.linux!.namespaces!.find((n) => n.type === "mount")!.path = `/proc/${holder}/ns/mnt`;
      });
      const link = nsLinks(holder, ["mnt"])[0];
      const r = await runRuntime(rt, roots[rt], ["run", "--bundle", b.dir, `mnt-${process.pid}-${++seq}`]);
      assert.equal(r.code, 0, `${rt}: ${r.stderr}`);
      assert.equal(r.stdout.split("\n")[0], link, `${rt}: the process is in the holder's mount namespace`);
      seen[rt] = r.stdout.replace(link!, "mnt:[holder]");
      killPid(holder);
    }
    assert.equal(seen.berth, seen.runc);
    assert.equal(seen.berth, "mnt:[holder]\nbin\ndev\netc\nhome\nproc\nroot\nsys\ntmp\nsh -c readlink /proc/self/ns/mnt; ls /; cat /proc/1/cmdline | tr '\\0' ' ' ");
  });
});

interface MountView {
  mountpoint: string;
  options: string;
  /** Optional fields with their numbers: shared:N, master:N. */
  optional: string[];
}

function parseMountinfoLines(text: string, under: string): MountView[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const f = line.split(" ");
      const sep = f.indexOf("-", 6);
      return { mountpoint: f[4]!, options: f[5]!, optional: f.slice(6, sep) };
    })
    .filter((m) => m.mountpoint === under || m.mountpoint.startsWith(`${under}/`));
}

describe("bind mount propagation and flags match runc", () => {
  // The source must be a shared mount for slave and shared binds to mean anything, and the test
  // runner's mount namespace has only private mounts. So each runtime runs (through nsenter) in a
  // mount namespace of a holder process of the test's, where the source is a tmpfs made shared;
  // that namespace and its mounts go when the holder is killed. A mount made on the source after
  // create shows which container mounts receive propagation.
  test("rprivate, rslave, rshared and the default, with ro, nosuid, nodev and noexec", async () => {
    const seen = {} as Record<Runtime, string[]>;
    for (const rt of RUNTIMES) {
      const holder = await mountNamespaceHolder();
      const inHolder = ["nsenter", "-t", String(holder), "-m", "--"];
      const src = join(io, `src-${rt}`);
      mkdirSync(src);
      execFileSync("nsenter", ["-t", String(holder), "-m", "--", "sh", "-c", `mount -t tmpfs berth-src ${src} && mount --make-shared ${src} && mkdir ${src}/later`]);
      const sourcePeer = parseMountinfoLines(readFileSync(`/proc/${holder}/mountinfo`, "utf8"), src)[0]!.optional;
      assert.match(sourcePeer.join(" "), /^shared:\d+$/);

      const b = await bundle((s) => {
        s.process!.args = ["cat", "/proc/self/mountinfo"];
        s.mounts!.push(
          { destination: "/m/private", type: "bind", source: src, options: ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"] },
          { destination: "/m/slave", type: "bind", source: src, options: ["rbind", "rslave", "nosuid"] },
          { destination: "/m/shared", type: "bind", source: src, options: ["rbind", "rshared", "nodev"] },
          { destination: "/m/default", type: "bind", source: src, options: ["rbind", "noexec"] },
        );
      });
      const id = `prop-${process.pid}-${++seq}`;
      const c = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-${id}`, { prefix: inHolder });
      assert.equal(c.code, 0, `${rt} create: ${c.stderr}`);
      execFileSync("nsenter", ["-t", String(holder), "-m", "--", "mount", "-t", "tmpfs", "berth-later", `${src}/later`]);
      assert.equal((await runRuntime(rt, roots[rt], ["start", id], { prefix: inHolder })).code, 0);
      await waitForStatus(rt, roots[rt], id, "stopped");
      const mounts = parseMountinfoLines(readFileSync(c.outFile, "utf8"), "/m");
      assert.equal((await runRuntime(rt, roots[rt], ["delete", id])).code, 0);
      killPid(holder);

      // A slave's master is the source's peer group.
      const peer = sourcePeer[0]!.replace("shared:", "master:");
      assert.ok(mounts.find((m) => m.mountpoint === "/m/slave")!.optional.includes(peer), `${rt}: /m/slave is a slave of the source`);
      seen[rt] = mounts.map((m) => `${m.mountpoint} ${m.options.split(",").filter((o) => o !== "relatime").join(",")} ${m.optional.map((o) => o.replace(/:\d+$/, ":N")).join(" ")}`.trim());
    }
    assert.deepEqual(seen.berth, seen.runc);
    assert.deepEqual(seen.berth, [
      "/m/private ro,nosuid,nodev,noexec",
      "/m/slave rw,nosuid master:N",
      "/m/shared rw,nodev shared:N master:N",
      "/m/default rw,noexec master:N",
      // Mounted on the source after create: received by every bind but the private one.
      "/m/slave/later rw master:N",
      "/m/default/later rw master:N",
      "/m/shared/later rw shared:N master:N",
    ]);
  });
});
