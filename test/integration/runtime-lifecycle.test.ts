// `berth runtime` through a container's life, with runc as the oracle: what `state` says after
// create, start and the process's exit; what kill and delete do in each state and what they leave
// behind; what is refused (a second start, an id in use, ids that are not ids).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Spec } from "../../runtime/oci/spec-types";
import { type Bundle, makeBundle, removeBundle, type Runtime, runRuntime } from "../support/bundle";
import { validateRuntimeSpecDoc } from "../support/oci-schemas";
import {
  alive,
  cgroupDirsOf,
  existingDirs,
  makeRoots,
  type Roots,
  RUNTIMES,
  removeRoots,
  runDetached,
  state,
  waitForStatus,
  waitUntil,
} from "../support/runtime-pair";

let roots: Roots;
let io: string;
const bundles: Bundle[] = [];
let seq = 0;

before(async () => {
  roots = await makeRoots();
  io = await mkdtemp(join(tmpdir(), "berth-lifecycle-io-"));
});

after(async () => {
  await removeRoots(roots);
  for (const b of bundles) await removeBundle(b);
  await rm(io, { recursive: true, force: true });
});

const newId = (what: string) => `${what}-${process.pid}-${++seq}`;

/** A bundle whose process runs `script` (default: wait at the gate, then exit with the number read there). */
async function bundle(script = "read code < /gate; exit $code", edit?: (s: Spec) => void): Promise<Bundle> {
  const b = await makeBundle((s) => {
    s.process!.args = ["sh", "-c", script];
    edit?.(s);
  });
  bundles.push(b);
  // The gate: a FIFO in the rootfs the process blocks reading until the test writes to it.
  execFileSync("mkfifo", [join(b.rootfs, "gate")]);
  return b;
}

/** Lets a gated process go on: it exits with `code`. Waits for it to open the gate first. */
async function openGate(b: Bundle, code: number): Promise<void> {
  const gate = join(b.rootfs, "gate");
  let fd: number | undefined;
  await waitUntil(() => {
    try {
      fd = openSync(gate, constants.O_WRONLY | constants.O_NONBLOCK);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENXIO") throw err;
      return false;
    }
  }, "the container's process to read its gate");
  writeSync(fd!, `${code}\n`);
  closeSync(fd!);
}

async function create(rt: Runtime, b: Bundle, id: string): Promise<number> {
  const r = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-${id}`);
  assert.equal(r.code, 0, `${rt} create ${id}: ${r.stderr}`);
  const st = await state(rt, roots[rt], id);
  return st.pid as number;
}

async function start(rt: Runtime, id: string): Promise<void> {
  const r = await runRuntime(rt, roots[rt], ["start", id]);
  assert.equal(r.code, 0, `${rt} start ${id}: ${r.stderr}`);
}

/** What each runtime answered, for the final comparison. */
type PerRuntime<T> = Record<Runtime, T>;

const RFC3339_NANO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}Z$/;

describe("berth runtime lifecycle matches runc", () => {
  test("state says created, running, then stopped, with runc's fields", async () => {
    const seen = {} as PerRuntime<Record<string, unknown>[]>;
    for (const rt of RUNTIMES) {
      const b = await bundle(undefined, (s) => {
        s.annotations = { "org.example.lifecycle": "yes" };
        // An older config: the state still names the runtime-spec version the runtime implements.
        s.ociVersion = "1.0.2";
      });
      const id = newId("state");
      const pid = await create(rt, b, id);
      const created = await state(rt, roots[rt], id);
      assert.ok(pid > 0 && alive(pid), `${rt}: the created container's init (pid ${pid}) is alive`);
      await start(rt, id);
      const running = await state(rt, roots[rt], id);
      await openGate(b, 0);
      const stopped = await waitForStatus(rt, roots[rt], id, "stopped");
      seen[rt] = [created, running, stopped];

      for (const st of seen[rt]) {
        assert.equal(st.id, id);
        assert.equal(st.bundle, b.dir);
        assert.equal(st.rootfs, join(b.dir, "rootfs"));
        assert.match(st.created as string, RFC3339_NANO);
        assert.match(st.ociVersion as string, /^1\.\d+\.\d+/);
        assert.equal(typeof st.owner, "string");
        assert.deepEqual(st.annotations, { "org.example.lifecycle": "yes" });
        validateRuntimeSpecDoc("state-schema.json", st);
      }
      assert.equal(running.pid, pid, `${rt}: the running container keeps its init's pid`);
      assert.equal(stopped.pid, 0, `${rt}: a stopped container has pid 0`);
      assert.equal(created.created, stopped.created);
      assert.equal((await runRuntime(rt, roots[rt], ["delete", id])).code, 0);
    }
    assert.deepEqual(
      seen.berth.map((s) => s.status),
      seen.runc.map((s) => s.status),
    );
    assert.deepEqual(seen.berth[0]!.status, "created");
    for (const i of [0, 1, 2]) assert.deepEqual(Object.keys(seen.berth[i]!).sort(), Object.keys(seen.runc[i]!).sort(), `state field set after step ${i}`);
    assert.equal(seen.berth[0]!.ociVersion, "1.3.0");
  });

  test("a state without annotations has no annotations field, as runc's", async () => {
    const keys = {} as PerRuntime<string[]>;
    for (const rt of RUNTIMES) {
      const b = await bundle();
      const id = newId("noann");
      await create(rt, b, id);
      keys[rt] = Object.keys(await state(rt, roots[rt], id)).sort();
      assert.equal((await runRuntime(rt, roots[rt], ["delete", id])).code, 0);
    }
    assert.deepEqual(keys.berth, keys.runc);
    assert.ok(!keys.berth.includes("annotations"));
  });

  test("list shows each container with its status, in text and JSON", async () => {
    const out = {} as PerRuntime<{ ids: string[]; json: Array<Record<string, unknown>>; header: string }>;
    for (const rt of RUNTIMES) {
      const a = newId("list-a");
      const b = newId("list-b");
      const ba = await bundle();
      await create(rt, ba, a);
      await create(rt, await bundle(), b);
      await start(rt, a);
      const quiet = await runRuntime(rt, roots[rt], ["list", "-q"]);
      const json = await runRuntime(rt, roots[rt], ["list", "--format", "json"]);
      const text = await runRuntime(rt, roots[rt], ["list"]);
      out[rt] = {
        ids: quiet.stdout.split("\n").filter((l) => l === a || l === b),
        json: (JSON.parse(json.stdout) as Array<Record<string, unknown>>).filter((s) => s.id === a || s.id === b),
        header: text.stdout.split("\n")[0]!.split(/\s+/).join(" "),
      };
      assert.deepEqual(out[rt].ids, [a, b]);
      assert.deepEqual(
        out[rt].json.map((s) => s.status),
        ["running", "created"],
      );
      await openGate(ba, 0);
      await waitForStatus(rt, roots[rt], a, "stopped");
      for (const id of [a, b]) assert.equal((await runRuntime(rt, roots[rt], ["delete", "--force", id])).code, 0);
    }
    assert.equal(out.berth.header, out.runc.header);
    assert.deepEqual(Object.keys(out.berth.json[0]!).sort(), Object.keys(out.runc.json[0]!).sort());
  });

  test("kill of a created container ends its init and leaves it stopped", async () => {
    const status = {} as PerRuntime<string>;
    for (const rt of RUNTIMES) {
      const b = await bundle();
      const id = newId("kill-created");
      const pid = await create(rt, b, id);
      // No signal named: SIGTERM, as runc.
      const k = await runRuntime(rt, roots[rt], ["kill", id]);
      assert.equal(k.code, 0, `${rt}: ${k.stderr}`);
      status[rt] = String((await waitForStatus(rt, roots[rt], id, "stopped")).status);
      await waitUntil(() => !alive(pid), `${rt}: the init to be gone`);
      assert.equal((await runRuntime(rt, roots[rt], ["delete", id])).code, 0);
    }
    assert.deepEqual(status.berth, status.runc);
  });

  test("kill of a running container delivers the signal: a trapped SIGTERM runs the trap, SIGKILL ends it", async () => {
    const seen = {} as PerRuntime<{ term: string; killCodes: number[] }>;
    for (const rt of RUNTIMES) {
      // The process is PID 1 of its namespace: a signal it has no handler for would be ignored.
      const b = await bundle("trap 'echo got TERM; exit 3' TERM; sleep 30 & wait");
      const id = newId("kill-term");
      await create(rt, b, id);
      await start(rt, id);
      // sh has set its trap once it has started the sleep.
      const pid = (await state(rt, roots[rt], id)).pid as number;
      await waitUntil(() => childrenOf(pid).length > 0, `${rt}: sh to start its sleep`);
      assert.equal((await runRuntime(rt, roots[rt], ["kill", id, "TERM"])).code, 0);
      await waitForStatus(rt, roots[rt], id, "stopped");
      const term = readFileSync(join(io, `${rt}-${id}.out`), "utf8");

      const b2 = await bundle("sleep 30");
      const id2 = newId("kill-kill");
      await create(rt, b2, id2);
      await start(rt, id2);
      const first = await runRuntime(rt, roots[rt], ["kill", id2, "SIGKILL"]);
      await waitForStatus(rt, roots[rt], id2, "stopped");
      // A stopped container cannot be signalled.
      const again = await runRuntime(rt, roots[rt], ["kill", id2, "KILL"]);
      seen[rt] = { term, killCodes: [first.code!, again.code!] };
      for (const done of [id, id2]) assert.equal((await runRuntime(rt, roots[rt], ["delete", done])).code, 0);
    }
    assert.equal(seen.berth.term, "got TERM\n");
    assert.deepEqual(seen.berth, seen.runc);
    assert.deepEqual(seen.berth.killCodes, [0, 1]);
  });

  test("kill --all signals every process in the container's cgroup", async () => {
    const seen = {} as PerRuntime<{ code: number; status: string }>;
    for (const rt of RUNTIMES) {
      const b = await bundle("sleep 30 & sleep 30 & wait");
      const id = newId("kill-all");
      const pid = await create(rt, b, id);
      await start(rt, id);
      await waitUntil(() => childrenOf(pid).length === 2, `${rt}: both sleeps to start`);
      const procs = [pid, ...childrenOf(pid)];
      const k = await runRuntime(rt, roots[rt], ["kill", "--all", id, "KILL"]);
      await waitUntil(() => procs.every((p) => !alive(p)), `${rt}: every process of the container to die`);
      seen[rt] = { code: k.code!, status: String((await state(rt, roots[rt], id)).status) };
      assert.equal((await runRuntime(rt, roots[rt], ["delete", id])).code, 0);
    }
    assert.deepEqual(seen.berth, seen.runc);
    assert.deepEqual(seen.berth, { code: 0, status: "stopped" });
  });

  test("delete removes a created container, refuses a running one without --force, removes a stopped one", async () => {
    const codes = {} as PerRuntime<Record<string, number>>;
    for (const rt of RUNTIMES) {
      const c: Record<string, number> = {};
      // Created: delete ends its init, as runc does.
      const created = newId("del-created");
      const pid1 = await create(rt, await bundle(), created);
      const dirs1 = cgroupDirsOf(pid1);
      assert.ok(dirs1.length > 0, `${rt}: the init is in cgroups of its own`);
      c.created = (await runRuntime(rt, roots[rt], ["delete", created])).code!;
      await assertGone(rt, created, pid1, dirs1);

      // Running: refused without --force, and left running; removed with it.
      const running = newId("del-running");
      const pid2 = await create(rt, await bundle("sleep 30"), running);
      await start(rt, running);
      const dirs2 = cgroupDirsOf(pid2);
      c.running = (await runRuntime(rt, roots[rt], ["delete", running])).code!;
      assert.equal((await state(rt, roots[rt], running)).status, "running", `${rt}: a refused delete leaves the container running`);
      c.runningForce = (await runRuntime(rt, roots[rt], ["delete", "--force", running])).code!;
      await assertGone(rt, running, pid2, dirs2);

      // Stopped.
      const stopped = newId("del-stopped");
      const b3 = await bundle();
      const pid3 = await create(rt, b3, stopped);
      const dirs3 = cgroupDirsOf(pid3);
      await start(rt, stopped);
      await openGate(b3, 0);
      await waitForStatus(rt, roots[rt], stopped, "stopped");
      c.stopped = (await runRuntime(rt, roots[rt], ["delete", stopped])).code!;
      await assertGone(rt, stopped, pid3, dirs3);

      // Unknown: an error, except with --force.
      c.unknown = (await runRuntime(rt, roots[rt], ["delete", newId("never")])).code!;
      c.unknownForce = (await runRuntime(rt, roots[rt], ["delete", "--force", newId("never")])).code!;
      codes[rt] = c;
    }
    assert.deepEqual(codes.berth, codes.runc);
    assert.deepEqual(codes.berth, { created: 0, running: 1, runningForce: 0, stopped: 0, unknown: 1, unknownForce: 0 });
  });

  test("start of a started container fails, as does state, start and kill of an unknown one", async () => {
    const codes = {} as PerRuntime<number[]>;
    for (const rt of RUNTIMES) {
      const b = await bundle();
      const id = newId("start-twice");
      await create(rt, b, id);
      await start(rt, id);
      const second = await runRuntime(rt, roots[rt], ["start", id]);
      assert.match(second.stderr, /running/, `${rt}: ${second.stderr}`);
      await openGate(b, 0);
      await waitForStatus(rt, roots[rt], id, "stopped");
      const third = await runRuntime(rt, roots[rt], ["start", id]);
      const unknown = newId("never");
      const others = await Promise.all([["state", unknown], ["start", unknown], ["kill", unknown, "KILL"]].map((a) => runRuntime(rt, roots[rt], a)));
      for (const o of others) assert.match(o.stderr, /does not exist/, `${rt}: ${o.stderr}`);
      codes[rt] = [second.code!, third.code!, ...others.map((o) => o.code!)];
      assert.equal((await runRuntime(rt, roots[rt], ["delete", id])).code, 0);
    }
    assert.deepEqual(codes.berth, codes.runc);
    assert.deepEqual(codes.berth, [1, 1, 1, 1, 1]);
  });

  test("create with an id in use fails and leaves the existing container alone", async () => {
    const seen = {} as PerRuntime<{ code: number; status: string }>;
    for (const rt of RUNTIMES) {
      const id = newId("dup");
      const pid = await create(rt, await bundle(), id);
      const b2 = await bundle();
      const r = await runDetached(rt, roots[rt], ["create", "--bundle", b2.dir, id], io, `${rt}-${id}-again`);
      assert.match(r.stderr, /already exists/, `${rt}: ${r.stderr}`);
      const st = await state(rt, roots[rt], id);
      assert.equal(st.pid, pid);
      assert.equal(st.bundle, bundles.at(-2)!.dir, `${rt}: the state still names the first bundle`);
      seen[rt] = { code: r.code!, status: String(st.status) };
      assert.equal((await runRuntime(rt, roots[rt], ["delete", "--force", id])).code, 0);
    }
    assert.deepEqual(seen.berth, seen.runc);
    assert.deepEqual(seen.berth, { code: 1, status: "created" });
  });

  test("ids that are not ids are refused and leave nothing behind", async () => {
    const b = await bundle();
    const ids = ["bad/id", "..", "a b", "x:y", "", "../escape"];
    const codes = {} as PerRuntime<number[]>;
    for (const rt of RUNTIMES) {
      codes[rt] = [];
      const before = await runRuntime(rt, roots[rt], ["list", "-q"]);
      for (const id of ids) {
        const r = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-badid`);
        assert.match(r.stderr, id === "" ? /container id cannot be empty/ : /invalid container id/i, `${rt} ${JSON.stringify(id)}: ${r.stderr}`);
        codes[rt].push(r.code!);
      }
      assert.equal((await runRuntime(rt, roots[rt], ["list", "-q"])).stdout, before.stdout, `${rt}: nothing was created`);
    }
    assert.deepEqual(codes.berth, codes.runc);
    assert.ok(codes.berth.every((c) => c === 1));
  });
});

/** Direct children of `pid` (from /proc/<pid>/task/<pid>/children). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** After delete: its state directory, cgroups and init are gone, and list does not show it. */
async function assertGone(rt: Runtime, id: string, pid: number, cgroups: string[]): Promise<void> {
  // runc's --root holds one directory per container, as berth's does.
  assert.ok(!existsSync(join(roots[rt], id)), `${rt}: ${id}'s state directory is gone`);
  await waitUntil(() => !alive(pid), `${rt}: ${id}'s init (pid ${pid}) to be gone`);
  assert.deepEqual(existingDirs(cgroups), [], `${rt}: ${id}'s cgroups are gone`);
  const list = await runRuntime(rt, roots[rt], ["list", "-q"]);
  assert.ok(!list.stdout.split("\n").includes(id), `${rt}: list no longer shows ${id}`);
}
