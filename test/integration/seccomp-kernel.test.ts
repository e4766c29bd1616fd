// Compiled filters in the real kernel: a short-lived Node child (tsx, so it imports berth's
// modules) sets no_new_privs, loads a filter with runtime/linux/seccomp.ts, says "loaded" and
// waits for a line on stdin before making the syscalls under test, so the parent can read the
// child's /proc status while the filter is in force.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const compileModule = join(root, "runtime/security/seccomp/compile.ts");
const defaultProfileModule = join(root, "runtime/security/seccomp/default-profile.ts");
const loaderModule = join(root, "runtime/linux/seccomp.ts");

/** The child's preamble: compile `profileExpr` (JS evaluating to a LinuxSeccomp) and load it. */
function childSource(profileExpr: string, afterGo: string): string {
  return `
    const { compileSeccomp } = await import(${JSON.stringify(compileModule)});
    const { runtimeDefaultProfile } = await import(${JSON.stringify(defaultProfileModule)});
    const { loadSeccompFilter, setNoNewPrivs } = await import(${JSON.stringify(loaderModule)});
    const { createInterface } = await import("node:readline");
    const compiled = compileSeccomp(${profileExpr}, { nativeArch: "x86_64" });
    setNoNewPrivs();
    loadSeccompFilter(compiled.program, compiled.flags);
    process.stdout.write("loaded\\n");
    const lines = createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (line === "go") break;
    }
    lines.close();
    ${afterGo}
  `;
}

interface ChildResult {
  status: string;
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs the child; `status` is its /proc/<pid>/status read while the filter was loaded. */
async function runChild(source: string): Promise<ChildResult> {
  // No core file when the filter kills the child (core_pattern may be a plain "core" in cwd).
  const child = spawn(
    "/bin/sh",
    ["-c", 'ulimit -c 0 && exec "$0" "$@"', process.execPath, "--import", "tsx", "--input-type=module", "-e", source],
    { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
  );
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("close", (code, signal) => resolve([code, signal])),
  );
  // A safety net, not a timing assertion: a child stuck before "loaded" must not outlive the test.
  const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  try {
    const lines = createInterface({ input: child.stdout });
    let status = "";
    for await (const line of lines) {
      if (line === "loaded") {
        status = await readFile(`/proc/${child.pid}/status`, "utf8");
        child.stdin.end("go\n");
        continue;
      }
      stdout += `${line}\n`;
    }
    const [code, signal] = await exited;
    return { status, stdout, stderr, code, signal };
  } finally {
    clearTimeout(guard);
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, "SIGKILL");
      await exited;
    }
  }
}

function statusField(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1];
}

test("a loaded filter makes mkdir fail with the profile's errno, and /proc shows the child in filter mode", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-seccomp-"));
  try {
    const profile = JSON.stringify({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 28 }],
    });
    const result = await runChild(
      childSource(
        profile,
        `
        const fs = await import("node:fs");
        let mkdir = "created";
        try { fs.mkdirSync(${JSON.stringify(join(dir, "blocked"))}); } catch (err) { mkdir = err.code; }
        fs.writeFileSync(${JSON.stringify(join(dir, "allowed"))}, "ok");
        console.log(JSON.stringify({ mkdir, pid: process.pid }));
        `,
      ),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(statusField(result.status, "Seccomp"), "2", "SECCOMP_MODE_FILTER");
    assert.equal(statusField(result.status, "Seccomp_filters"), "1");
    assert.equal(statusField(result.status, "NoNewPrivs"), "1");
    assert.equal(JSON.parse(result.stdout).mkdir, "ENOSPC");
    assert.equal(existsSync(join(dir, "blocked")), false);
    assert.equal(await readFile(join(dir, "allowed"), "utf8"), "ok", "other syscalls still work");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("SCMP_ACT_KILL_PROCESS on uname kills the child with SIGSYS", async () => {
  const profile = JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [{ names: ["uname"], action: "SCMP_ACT_KILL_PROCESS" }],
  });
  // os.hostname() calls uname(2) each time (os.release() is read once at startup).
  const result = await runChild(childSource(profile, `const os = await import("node:os"); console.log(os.hostname());`));
  assert.equal(result.signal, "SIGSYS", `exit code ${result.code}, stderr: ${result.stderr}`);
  assert.equal(result.stdout, "", "the child died in uname");
  assert.equal(statusField(result.status, "Seccomp"), "2");
});

test("the kernel accepts the RuntimeDefault program, which refuses unshare(CLONE_NEWUSER) with EPERM", async () => {
  const profile = `runtimeDefaultProfile({ capabilities: ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
    "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"], arch: "x86_64" })`;
  const result = await runChild(
    childSource(
      profile,
      `
      const { spawnSync } = await import("node:child_process");
      const run = (argv) => {
        const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
        return { status: r.status, stderr: r.stderr.trim() };
      };
      console.log(JSON.stringify({ insns: compiled.program.length / 8, tru: run(["/bin/true"]), unshare: run(["unshare", "-U", "true"]) }));
      `,
    ),
  );
  assert.equal(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  assert.ok(out.insns > 255, `a long program (${out.insns} instructions)`);
  assert.equal(out.tru.status, 0, "fork and exec are allowed");
  assert.notEqual(out.unshare.status, 0);
  assert.match(out.unshare.stderr, /Operation not permitted/);
});

test("where seccomp(2) answers ENOSYS, a filter without flags loads through prctl(PR_SET_SECCOMP)", async () => {
  // The first filter plays an old kernel: seccomp(2) fails with ENOSYS, prctl still works.
  const profile = JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    flags: [],
    syscalls: [{ names: ["seccomp"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }],
  });
  const result = await runChild(
    childSource(
      profile,
      `
      const fs = await import("node:fs");
      const second = compileSeccomp({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 28 }],
      }, { nativeArch: "x86_64" });
      let withFlags = "loaded";
      try { loadSeccompFilter(second.program, second.flags); } catch (err) { withFlags = err.name; }
      loadSeccompFilter(second.program, 0);
      let mkdir = "created";
      try { fs.mkdirSync("/proc/berth-seccomp-never"); } catch (err) { mkdir = err.code; }
      const filters = /^Seccomp_filters:\\s*(\\d+)/m.exec(fs.readFileSync("/proc/self/status", "utf8"))[1];
      console.log(JSON.stringify({ withFlags, mkdir, filters }));
      `,
    ),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), { withFlags: "FailedPreconditionError", mkdir: "ENOSPC", filters: "2" });
});
