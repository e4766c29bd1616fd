// What `berth runtime` says about configs: `features` and `spec` produce documents the runtime-spec
// schemas accept, `spec` never overwrites, and a config that cannot run is refused by `create`
// with exit 1 and a message naming the problem, leaving no state, cgroup or process behind.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Spec } from "../../runtime/oci/spec-types";
import { validateSpec } from "../../runtime/oci/validate";
import { type Bundle, makeBundle, removeBundle, type RunResult, type Runtime, runRuntime } from "../support/bundle";
import { validateRuntimeSpecDoc } from "../support/oci-schemas";
import { cgroupDirsBelowSelf, existingDirs, makeRoots, processesMentioning, type Roots, RUNTIMES, removeRoots, runDetached } from "../support/runtime-pair";

let roots: Roots;
let io: string;
let seq = 0;

before(async () => {
  roots = await makeRoots();
  io = await mkdtemp(join(tmpdir(), "berth-config-io-"));
});

after(async () => {
  await removeRoots(roots);
  await rm(io, { recursive: true, force: true });
});

describe("berth runtime features and spec", () => {
  test("features is a runtime-spec features document", async () => {
    const r = await runRuntime("berth", roots.berth, ["features"]);
    assert.equal(r.code, 0, r.stderr);
    const features = JSON.parse(r.stdout) as { ociVersionMax: string; linux: { namespaces: string[] }; hooks: string[] };
    validateRuntimeSpecDoc("features-schema.json", features);
    assert.equal(features.ociVersionMax, "1.3.0");
    assert.ok(!features.linux.namespaces.includes("user"), "user namespaces are not offered");
  });

  test("spec writes a config.json that validates, and refuses to overwrite it, as runc spec", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-spec-"));
    try {
      const codes = {} as Record<Runtime, number[]>;
      for (const rt of RUNTIMES) {
        const bundle = join(dir, rt);
        await mkdir(bundle);
        const first = await runRuntime(rt, roots[rt], ["spec", "--bundle", bundle]);
        const written = readFileSync(join(bundle, "config.json"), "utf8");
        const second = await runRuntime(rt, roots[rt], ["spec", "--bundle", bundle]);
        assert.match(second.stderr, /config\.json exists/, `${rt}: ${second.stderr}`);
        assert.equal(readFileSync(join(bundle, "config.json"), "utf8"), written, `${rt}: the file is left as it was`);
        codes[rt] = [first.code!, second.code!];
        if (rt === "berth") {
          const spec = JSON.parse(written) as Spec;
          validateRuntimeSpecDoc("config-schema.json", spec);
          await validateSpec(spec, "berth runtime spec");
          assert.equal(spec.ociVersion, "1.3.0");
        }
      }
      assert.deepEqual(codes.berth, codes.runc);
      assert.deepEqual(codes.berth, [0, 1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

interface BadConfig {
  what: string;
  edit?: (s: Spec) => void;
  /** Changes the written bundle instead. */
  rewrite?: (b: Bundle) => void;
  /** berth's message (stderr). */
  message: RegExp;
  /** runc's exit code when it differs from berth's on purpose. */
  runcCode?: number;
}

const BAD: BadConfig[] = [
  {
    what: "a config.json that is not JSON",
    rewrite: (b) => writeFileSync(join(b.dir, "config.json"), '{ "ociVersion": "1.3.0", '),
    message: /config\.json is not valid JSON/,
  },
  {
    what: "a config that breaks the schema",
    edit: (s) => {
      (s.process!.user as unknown as Record<string, unknown>).uid = "root";
    },
    message: /invalid OCI runtime config: \/process\/user\/uid must be integer/,
  },
  {
    // Checked before the init is spawned (validate.ts, preSpawnView): create enters namespaces first.
    what: "a namespace of an unknown type",
    edit: (s) => {
      s.linux!.namespaces!.push({ type: "bogus" as "pid" });
    },
    message: /invalid OCI runtime config: \/linux\/namespaces\/\d+\/type must be equal to one of the allowed values/,
  },
  {
    what: "a bind mount whose source is missing",
    edit: (s) => {
      s.mounts!.push({ destination: "/data", type: "bind", source: "/nonexistent/berth-test-source", options: ["rbind", "ro"] });
    },
    message: /\/data.*\/nonexistent\/berth-test-source does not exist/,
  },
  {
    // runc 1.1 warns "ignoring unknown or unavailable capabilities" and runs without it; berth
    // refuses, since a misspelt capability would silently be missing.
    what: "an unknown capability",
    edit: (s) => {
      s.process!.capabilities!.bounding!.push("CAP_NOT_A_CAPABILITY");
    },
    message: /\/process\/capabilities\/bounding\/3 "CAP_NOT_A_CAPABILITY" is not a known capability/,
    runcCode: 0,
  },
  {
    // The init writes sysctls as root with every capability: one outside the container's own
    // namespaces would be set for the whole host. runc refuses these; so does berth.
    what: "a sysctl outside the container's namespaces (kernel.printk_ratelimit_burst)",
    edit: (s) => {
      s.linux!.sysctl = { "kernel.printk_ratelimit_burst": "11" };
    },
    message: /linux\.sysctl: sysctl "kernel\.printk_ratelimit_burst" is not in a separate kernel namespace/,
  },
  {
    what: "a net sysctl without a network namespace",
    edit: (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "network");
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1" };
    },
    message: /sysctl "net\.ipv4\.ip_forward" is not allowed in the host's network namespace/,
  },
  {
    what: "a net sysctl in a network namespace joined by path that is the host's own",
    edit: (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === "network" ? { type: "network", path: "/proc/self/ns/net" } : n));
      s.linux!.sysctl = { "net.ipv4.ip_forward": "1" };
    },
    message: /sysctl "net\.ipv4\.ip_forward" is not allowed in the host's network namespace/,
  },
  {
    what: "an IPC sysctl without an IPC namespace",
    edit: (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== "ipc");
      s.linux!.sysctl = { "kernel.shmmax": "1000000" };
    },
    message: /sysctl "kernel\.shmmax" is not allowed in the host's IPC namespace/,
  },
  {
    // (uid_t)-1 means "leave unchanged" to setresuid: the process would keep root.
    what: "a uid of 4294967295",
    edit: (s) => {
      s.process!.user.uid = 4294967295;
    },
    message: /process\.user\.uid 4294967295 is out of range: uids and gids are 0-2147483647/,
  },
  {
    what: "an env entry that is not NAME=VALUE",
    edit: (s) => {
      s.process!.env = [...(s.process!.env ?? []), "FOO"];
    },
    message: /process\.env\[\d+\] "FOO" is not NAME=VALUE/,
  },
  {
    what: "an oomScoreAdj out of range",
    edit: (s) => {
      s.process!.oomScoreAdj = 2000;
    },
    message: /process\.oomScoreAdj 2000 is out of range: -1000 to 1000/,
  },
  {
    what: "a hostname longer than 64 characters",
    edit: (s) => {
      s.hostname = "h".repeat(65);
    },
    message: /hostname is 65 characters; at most 64/,
  },
  {
    // runc refuses to set a limit below the usage it finds; berth's init is killed on the way, and
    // the message says why rather than only that the init died.
    what: "a memory limit below what the init needs to set the container up",
    edit: (s) => {
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: 1 } };
    },
    message: /its init was OOM-killed while setting the container up \(memory limit too low\?\)/,
  },
  {
    what: "a seccomp profile with an unknown action",
    edit: (s) => {
      s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_EXPLODE" as "SCMP_ACT_ALLOW" }] };
    },
    message: /\/linux\/seccomp\/syscalls\/0\/action must be equal to one of the allowed values/,
  },
];

describe("berth runtime create refuses a config that cannot run", () => {
  for (const bad of BAD) {
    test(`${bad.what}: exit 1, a message naming it, nothing left behind`, async () => {
      const codes = {} as Record<Runtime, number>;
      for (const rt of RUNTIMES) {
        let b: Bundle | undefined;
        try {
          b = await makeBundle((s) => {
            s.process!.args = ["sleep", "30"];
            bad.edit?.(s);
          });
          bad.rewrite?.(b);
          const id = `bad-${process.pid}-${++seq}`;
          const r = await runDetached(rt, roots[rt], ["create", "--bundle", b.dir, id], io, `${rt}-${id}`);
          codes[rt] = r.code!;
          if (rt === "berth") assert.match(r.stderr, bad.message);
          if (r.code === 0) {
            // runc, where it differs on purpose: it made the container; it goes now.
            assert.equal((await runRuntime(rt, roots[rt], ["delete", "--force", id])).code, 0);
          }
          const list = await runRuntime(rt, roots[rt], ["list", "-q"]);
          assert.ok(!list.stdout.split("\n").includes(id), `${rt}: no container ${id}`);
          assert.deepEqual(existingDirs([join(roots[rt], id)]), [], `${rt}: no state directory`);
          assert.deepEqual(existingDirs(cgroupDirsBelowSelf(b.spec.linux!.cgroupsPath!)), [], `${rt}: no cgroup`);
          if (rt === "berth") assert.deepEqual(processesMentioning(roots.berth), [], "no init process left");
        } finally {
          await removeBundle(b);
        }
      }
      assert.equal(codes.berth, 1);
      assert.equal(codes.runc, bad.runcCode ?? 1);
    });
  }
});

describe("berth runtime warns about what this host cannot apply but a container can run without", () => {
  // Without CAP_SYS_RESOURCE in the bounding set, lowering oom_score_adj fails with EACCES; the issue
  // asks for a warning, not a failure (runc 1.1 fails create here instead).
  /** Runs a container asking for oom_score_adj -500; null where this host lets us lower it (nothing to warn about then). */
  async function runLoweringOomScore(globals: string[]): Promise<RunResult | null> {
    const b = await makeBundle((s) => {
      s.process!.args = ["cat", "/proc/self/oom_score_adj"];
      s.process!.oomScoreAdj = -500;
    });
    try {
      const r = await runRuntime("berth", roots.berth, [...globals, "run", "--bundle", b.dir, `oom-${process.pid}-${++seq}`]);
      const own = readFileSync("/proc/self/oom_score_adj", "utf8").trim();
      assert.equal(r.code, 0, r.stderr);
      if (own !== "0" || r.stdout.trim() === "-500") return null;
      assert.equal(r.stdout.trim(), "0", "the container's process runs with the score it inherited");
      return r;
    } finally {
      await removeBundle(b);
    }
  }

  test("a negative oomScoreAdj the host refuses: the container runs and, without --log, the warning is on stderr", async () => {
    const r = await runLoweringOomScore([]);
    if (r) assert.match(r.stderr, /^berth runtime: warning: .*oom_score_adj -500 not applied/m);
  });

  // As runc's: given --log, warnings go there alone. Under conmon the runtime's stderr is the
  // container's own (create) or the exec's, where the line would read as the program's output.
  test("a negative oomScoreAdj the host refuses: with --log the warning is in the log, and stderr stays the program's", async () => {
    const log = join(io, `oom-${process.pid}.log`);
    const r = await runLoweringOomScore(["--log", log, "--log-format", "json"]);
    if (!r) return;
    assert.equal(r.stderr, "", "nothing of the runtime's on the container's stderr");
    const entry = JSON.parse(readFileSync(log, "utf8").trim().split("\n").at(-1)!) as { level: string; msg: string };
    assert.equal(entry.level, "warning");
    assert.match(entry.msg, /oom_score_adj -500 not applied/);
  });
});
