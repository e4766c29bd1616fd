// OCI hooks under berth runtime, with runc as the oracle: the same bundle's six kinds of hooks run
// under both, each hook gets the state on stdin with the same status, in the namespaces the spec
// names (startContainer resolves in the container), and a failing createRuntime hook fails the
// create and leaves nothing.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Hook, Spec } from "../../runtime/oci/spec-types";
import { makeBundle, removeBundle, runRuntime, type Runtime } from "../support/bundle";

const RUNTIMES: Runtime[] = ["runc", "berth"];
let roots: Record<Runtime, string>;
let out: string;
let seq = 0;

before(async () => {
  out = await mkdtemp(join(tmpdir(), "berth-hooks-"));
  roots = { runc: await mkdtemp(join(tmpdir(), "berth-hooks-runc-")), berth: await mkdtemp(join(tmpdir(), "berth-hooks-berth-")) };
});

after(async () => {
  for (const rt of RUNTIMES) {
    const list = await runRuntime(rt, roots[rt], ["list", "-q"]);
    for (const id of list.stdout.split("\n").filter(Boolean)) await runRuntime(rt, roots[rt], ["delete", "--force", id]);
    await rm(roots[rt], { recursive: true, force: true });
  }
  await rm(out, { recursive: true, force: true });
});

/** A host-side hook that saves its stdin (the state) as DIR/KIND.json. */
const saveState = (dir: string, kind: string): Hook => ({ path: "/bin/sh", args: ["sh", "-c", `cat > ${dir}/${kind}.json`], timeout: 10 });

describe("berth runtime runs OCI hooks as runc does", () => {
  test("all six kinds run, each with the state and status runc gives it", async () => {
    const seen: Record<Runtime, Record<string, { status: string; id: string; bundle: string; annotations?: Record<string, string> }>> = { runc: {}, berth: {} };
    const id = `hooks-${process.pid}-${++seq}`;
    for (const rt of RUNTIMES) {
      const dir = join(out, rt);
      await mkdir(dir, { recursive: true });
      const bundle = await makeBundle((s: Spec) => {
        s.process!.args = ["sh", "-c", "cat /tmp/startContainer.json >/dev/null && echo ran"];
        s.root!.readonly = false;
        s.annotations = { "org.example/hooks": "yes" };
        s.hooks = {
          prestart: [saveState(dir, "prestart")],
          createRuntime: [saveState(dir, "createRuntime")],
          createContainer: [saveState(dir, "createContainer")],
          // Resolved in the container, after pivot_root: the container's own sh and /tmp.
          startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "cat > /tmp/startContainer.json"] }],
          poststart: [saveState(dir, "poststart")],
          poststop: [saveState(dir, "poststop")],
        };
      });
      try {
        const r = await runRuntime(rt, roots[rt], ["run", "--bundle", bundle.dir, id]);
        assert.equal(r.code, 0, `${rt}: ${r.stderr}`);
        assert.equal(r.stdout, "ran\n", `${rt}: the startContainer hook wrote in the container`);
        for (const f of readdirSync(dir)) seen[rt][f.replace(/\.json$/, "")] = JSON.parse(readFileSync(join(dir, f), "utf8"));
        seen[rt].startContainer = JSON.parse(readFileSync(join(bundle.rootfs, "tmp", "startContainer.json"), "utf8"));
        for (const [kind, s] of Object.entries(seen[rt])) {
          assert.equal(s.id, id, `${rt} ${kind}`);
          assert.equal(s.bundle, bundle.dir, `${rt} ${kind}`);
          assert.deepEqual(s.annotations, { "org.example/hooks": "yes" }, `${rt} ${kind}`);
        }
      } finally {
        await removeBundle(bundle);
      }
    }
    assert.deepEqual(Object.keys(seen.berth).sort(), ["createContainer", "createRuntime", "poststart", "poststop", "prestart", "startContainer"]);
    assert.deepEqual(
      Object.fromEntries(Object.entries(seen.berth).map(([k, s]) => [k, s.status])),
      Object.fromEntries(Object.entries(seen.runc).map(([k, s]) => [k, s.status])),
      "the status each hook sees",
    );
  });

  test("a failing createRuntime hook fails create, names the hook, and leaves no container behind", async () => {
    for (const rt of RUNTIMES) {
      const bundle = await makeBundle((s: Spec) => {
        s.hooks = { createRuntime: [{ path: "/bin/sh", args: ["sh", "-c", "echo no-go >&2; exit 3"] }] };
      });
      const id = `hooks-fail-${process.pid}-${++seq}`;
      try {
        const r = await runRuntime(rt, roots[rt], ["create", "--bundle", bundle.dir, id]);
        assert.notEqual(r.code, 0, `${rt} create should fail`);
        if (rt === "berth") assert.match(r.stderr, /createRuntime hook #0 \(\/bin\/sh\) failed \(exit code 3\): no-go/);
        const list = await runRuntime(rt, roots[rt], ["list", "-q"]);
        assert.ok(!list.stdout.includes(id), `${rt} left ${id} behind`);
        assert.ok(!existsSync(join(roots[rt], id)), `${rt} left its state dir`);
      } finally {
        await removeBundle(bundle);
      }
    }
  });
});
