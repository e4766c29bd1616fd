// The pod service's bookkeeping: CRI name uniqueness, record files that survive a crash (and a
// corrupt one that does not take the others down), the files a pod's containers share, and
// where pod cgroups go.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "../../runtime/errors";
import { createLogger } from "../../runtime/log";
import { containerName, NameIndex, sandboxName } from "../../runtime/pods/names";
import { podHosts, resolvConf } from "../../runtime/pods/sandbox-files";
import { podCgroupPath, portMappingsOf } from "../../runtime/pods/sandbox-run";
import { RecordStore } from "../../runtime/pods/store";
import { BackgroundWork } from "../../runtime/pods/background";
import { nowNanos } from "../../runtime/pods/time";
import type * as cri from "../../runtime/api/cri-v1";

const quiet = createLogger({ level: "error", out: { write: () => true } as unknown as NodeJS.WritableStream });

describe("CRI names", () => {
  test("pod and container names are containerd's composite keys", () => {
    const pod = { name: "web", namespace: "default", uid: "u1", attempt: 2 };
    assert.equal(sandboxName(pod), "web_default_u1_2");
    assert.equal(containerName({ name: "nginx", attempt: 0 }, pod), "nginx_web_default_u1_0");
  });

  test("a name held by one id is refused to another with ALREADY_EXISTS, and free again once released", () => {
    const names = new NameIndex();
    names.reserve("a_b_c_0", "id1", "pod sandbox");
    names.reserve("a_b_c_0", "id1", "pod sandbox");
    assert.throws(() => names.reserve("a_b_c_0", "id2", "pod sandbox"), (e: { code: number; message: string }) => e.code === Code.ALREADY_EXISTS && /id1/.test(e.message));
    names.release("a_b_c_0", "id2");
    assert.throws(() => names.reserve("a_b_c_0", "id2", "pod sandbox"));
    names.release("a_b_c_0", "id1");
    names.reserve("a_b_c_0", "id2", "pod sandbox");
  });
});

describe("record store", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-records-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("records written by one process are read back by the next; a corrupt one and a torn temp file are set aside", async () => {
    const a = new RecordStore<{ id: string; v: number }>(join(dir, "s1"), "pod", quiet);
    await a.load();
    await a.put({ id: "aaaa1111", v: 1 });
    await a.put({ id: "bbbb2222", v: 2 });
    await writeFile(join(dir, "s1", "cccc3333.json"), '{"id": "cccc3333", "v":');
    await writeFile(join(dir, "s1", ".aaaa1111.json.0123456789ab.tmp"), "{");
    const b = new RecordStore<{ id: string; v: number }>(join(dir, "s1"), "pod", quiet);
    await b.load();
    assert.deepEqual(b.list().map((r) => r.id).sort(), ["aaaa1111", "bbbb2222"]);
    const files = (await readdir(join(dir, "s1"))).sort();
    assert.deepEqual(files, ["aaaa1111.json", "bbbb2222.json", "cccc3333.json.corrupt"]);
    assert.equal(b.resolve("bbbb")?.v, 2, "a unique prefix resolves");
    assert.throws(() => b.must("zzzz"), (e: { code: number }) => e.code === Code.NOT_FOUND);
    await b.remove("aaaa1111");
    await b.remove("aaaa1111");
    assert.equal(b.get("aaaa1111"), undefined);
  });

  test("a retired record is gone for every reader at once and stays a tombstone that a restart finds, until forgotten", async () => {
    const a = new RecordStore<{ id: string; v: number }>(join(dir, "s2"), "container", quiet);
    await a.load();
    await a.put({ id: "dddd4444", v: 4 });
    await a.put({ id: "eeee5555", v: 5 });
    await a.retire("dddd4444");
    assert.equal(a.get("dddd4444"), undefined);
    assert.deepEqual(a.list().map((r) => r.id), ["eeee5555"]);
    // A daemon killed now: the next one loads the live records and finds the tombstone.
    const b = new RecordStore<{ id: string; v: number }>(join(dir, "s2"), "container", quiet);
    await b.load();
    assert.deepEqual(b.list().map((r) => r.id), ["eeee5555"]);
    assert.deepEqual(await b.retired(), [{ id: "dddd4444", v: 4 }]);
    await b.forgetRetired("dddd4444");
    await b.forgetRetired("dddd4444");
    assert.deepEqual(await b.retired(), []);
  });
});

describe("background work", () => {
  test("drain waits for a key's work, including work started while it waits; a failure is logged, not thrown", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "warn", format: "json", out: { write: (l: string) => lines.push(l) > 0 } as unknown as NodeJS.WritableStream });
    const work = new BackgroundWork(log);
    const done: string[] = [];
    work.start("pod1", "first", async () => {
      await sleep(30);
      done.push("first");
      work.start("pod1", "chained", async () => {
        await sleep(10);
        done.push("chained");
      });
    });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    work.start("pod2", "other", async () => {
      await gate;
      done.push("other");
    });
    work.start("pod1", "failing", async () => {
      throw new Error("disk gone");
    });
    await work.drain("pod1");
    assert.deepEqual(done, ["first", "chained"], "pod2's work is not waited for");
    assert.ok(lines.some((l) => /failing failed/.test(l) && /disk gone/.test(l)));
    open();
    await work.drain();
    assert.deepEqual(done, ["first", "chained", "other"]);
    await work.drain();
  });
});

describe("pod files and settings", () => {
  test("resolv.conf from DNSConfig; none given means the host's", () => {
    assert.equal(resolvConf({ servers: ["10.0.0.10"], searches: ["ns.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5"] }), "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\noptions ndots:5\n");
    assert.equal(resolvConf({ servers: [], searches: [], options: [] }), undefined);
    assert.equal(resolvConf(null), undefined);
  });

  test("/etc/hosts names the pod's IPs after localhost", () => {
    const hosts = podHosts("web", ["10.88.0.5"]);
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost\n/);
    assert.match(hosts, /\n10\.88\.0\.5\tweb\n$/);
  });

  test("kubelet's cgroup_parent goes below berth's root; '/' as root keeps it absolute; systemd slices are refused", () => {
    assert.equal(podCgroupPath("berth", "/kubepods/burstable/pod1"), "berth/kubepods/burstable/pod1");
    assert.equal(podCgroupPath("/", "/kubepods/pod1"), "/kubepods/pod1");
    assert.equal(podCgroupPath("/berth", "kubepods"), "/berth/kubepods");
    assert.throws(() => podCgroupPath("berth", "kubepods-burstable.slice"), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
    assert.throws(() => podCgroupPath("berth", "/a/../../b"), (e: { code: number }) => e.code === Code.INVALID_ARGUMENT);
  });

  test("port mappings without a host port are not given to portmap; protocols are lower-cased", () => {
    const cfg = {
      portMappings: [
        { protocol: "TCP", containerPort: 80, hostPort: 8080, hostIp: "" },
        { protocol: "UDP", containerPort: 53, hostPort: 0, hostIp: "" },
      ],
    } as unknown as cri.PodSandboxConfig;
    assert.deepEqual(portMappingsOf(cfg), [{ protocol: "tcp", containerPort: 80, hostPort: 8080, hostIp: "" }]);
  });

  test("CRI times strictly increase, in nanoseconds", () => {
    const a = BigInt(nowNanos());
    const b = BigInt(nowNanos());
    assert.ok(b > a);
    assert.ok(a > 1_700_000_000_000_000_000n);
  });
});
