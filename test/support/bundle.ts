// OCI bundles for runtime tests: a busybox rootfs made from this machine's busybox-static, a
// config.json from berth's default spec (runc's) with the test's changes, and a cgroup path below
// the test's own cgroup. Runs the same bundle under `berth runtime` and under `runc`.
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUSYBOX_APPLETS } from "../../runtime/image/build";
import { defaultSpec } from "../../runtime/oci/default-spec";
import type { Spec } from "../../runtime/oci/spec-types";
import { BERTH_JS } from "./daemon";

export interface Bundle {
  dir: string;
  rootfs: string;
  spec: Spec;
  write(): void;
}

let seq = 0;

export async function makeBundle(edit?: (spec: Spec) => void): Promise<Bundle> {
  const dir = await mkdtemp(join(tmpdir(), "berth-bundle-"));
  const rootfs = join(dir, "rootfs");
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app"]) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"));
  for (const a of BUSYBOX_APPLETS) {
    if (a !== "busybox") symlinkSync("busybox", join(rootfs, "bin", a));
  }
  writeFileSync(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
  writeFileSync(join(rootfs, "etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  const spec = defaultSpec({ terminal: false, args: ["true"] });
  // Relative: below the caller's own cgroup in every hierarchy (runc's rule, and berth's), one level deep.
  spec.linux!.cgroupsPath = `berth-test-${process.pid}-${++seq}`;
  edit?.(spec);
  const b: Bundle = { dir, rootfs, spec, write: () => writeFileSync(join(dir, "config.json"), JSON.stringify(spec, null, 2)) };
  b.write();
  return b;
}

export async function removeBundle(b: Bundle | undefined): Promise<void> {
  if (b) await rm(b.dir, { recursive: true, force: true });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export type Runtime = "berth" | "runc";

/** The command line of a runtime with its own state root. */
export function runtimeArgv(runtime: Runtime, root: string, args: string[]): [string, string[]] {
  return runtime === "berth" ? [process.execPath, [BERTH_JS, "runtime", "--root", root, ...args]] : ["runc", ["--root", root, ...args]];
}

/** The command line of a runtime run through `prefix` (e.g. nsenter into a mount namespace). */
export function prefixedRuntimeArgv(prefix: string[] | undefined, runtime: Runtime, root: string, args: string[]): [string, string[]] {
  const [cmd, argv] = runtimeArgv(runtime, root, args);
  return prefix?.length ? [prefix[0]!, [...prefix.slice(1), cmd, ...argv]] : [cmd, argv];
}

export interface RunOptions {
  cwd?: string;
  timeoutMs?: number;
  /** Become the runtime's fds 3, 4... (for --preserve-fds). */
  extraFds?: number[];
  /** A command the runtime runs under, e.g. ["nsenter", "-t", PID, "-m", "--"]. */
  prefix?: string[];
}

/** Runs a runtime command to its end. */
export function runRuntime(runtime: Runtime, root: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, argv] = prefixedRuntimeArgv(opts.prefix, runtime, root, args);
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe", ...(opts.extraFds ?? [])] });
    let stdout = "";
    let stderr = "";
    p.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    p.on("close", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
