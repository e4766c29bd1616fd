// OCI lifecycle hooks (runtime-spec config.md#posix-platform-hooks), run as runc runs them: each
// hook's path with its args (args[0] is argv[0]) and exactly its env, the container's state JSON
// on stdin, killed after its timeout. Who runs them and where:
//   prestart, createRuntime  the launcher, in the runtime's namespaces, after the init made the
//                            mounts and before pivot_root (the init waits for them);
//   createContainer          the init, in the container's namespaces, before pivot_root;
//   startContainer           the init, after `start` released it, before the user's program;
//   poststart                `start`, once the program was released (state "created", as runc's);
//   poststop                 `delete`, once the container is gone.
// A failing hook before the program runs fails the container; poststart and poststop failures are
// warnings, as the spec says.
import type * as ChildProcesses from "node:child_process";
import { FailedPreconditionError } from "../errors";
import { OCI_VERSION } from "./default-spec";
import type { Hook, Hooks, Spec, State } from "./spec-types";

export type HookKind = keyof Hooks;

// Loaded when a hook runs: node:child_process (with net and streams) costs the init stage ~3 ms
// of every container's start, and most containers have no hooks.
const childProcesses = () => process.getBuiltinModule("node:child_process") as typeof ChildProcesses;

export interface HookState {
  id: string;
  pid: number;
  status: State["status"];
  bundle: string;
  annotations?: Record<string, string>;
}

/** The state JSON a hook reads on stdin (runc's specs.State: no rootfs, created or owner). */
export function hookInput(s: HookState): string {
  return JSON.stringify({ ociVersion: OCI_VERSION, id: s.id, status: s.status, pid: s.pid, bundle: s.bundle, ...(s.annotations && Object.keys(s.annotations).length ? { annotations: s.annotations } : {}) });
}

export function hooksOf(spec: Spec, kind: HookKind): Hook[] {
  return spec.hooks?.[kind] ?? [];
}

function describe(kind: HookKind, i: number, h: Hook): string {
  return `${kind} hook #${i} (${h.path})`;
}

function failure(kind: HookKind, i: number, h: Hook, why: string): FailedPreconditionError {
  return new FailedPreconditionError(`${describe(kind, i, h)} ${why}`);
}

/** Runs the hooks of `kind` one after the other; the first failure ends the run. */
export async function runHooks(kind: HookKind, hooks: Hook[], state: HookState): Promise<void> {
  const input = hookInput(state);
  for (const [i, h] of hooks.entries()) {
    await new Promise<void>((resolve, reject) => {
      const [argv0, ...args] = h.args?.length ? h.args : [h.path];
      const child = childProcesses().spawn(h.path, args, { argv0, env: envOf(h), stdio: ["pipe", "ignore", "pipe"] });
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => {
        if (stderr.length < 4096) stderr += d.toString();
      });
      child.stdin!.on("error", () => {});
      child.stdin!.end(input);
      const timer = h.timeout ? setTimeout(() => child.kill("SIGKILL"), h.timeout * 1000) : undefined;
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(failure(kind, i, h, `cannot run: ${err.message}`));
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) return resolve();
        const why = signal === "SIGKILL" && h.timeout ? `timed out after ${h.timeout} s` : `failed (${signal ?? `exit code ${code}`})`;
        reject(failure(kind, i, h, `${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`));
      });
    });
  }
}

/** The same, synchronously: for the init, which has no event loop turn to spare before execve. */
export function runHooksSync(kind: HookKind, hooks: Hook[], state: HookState): void {
  const input = hookInput(state);
  for (const [i, h] of hooks.entries()) {
    const [argv0, ...args] = h.args?.length ? h.args : [h.path];
    const r = childProcesses().spawnSync(h.path, args, { argv0, env: envOf(h), input, stdio: ["pipe", "ignore", "pipe"], timeout: h.timeout ? h.timeout * 1000 : undefined, killSignal: "SIGKILL" });
    if (r.error && (r.error as NodeJS.ErrnoException).code === "ETIMEDOUT") throw failure(kind, i, h, `timed out after ${h.timeout} s`);
    if (r.error) throw failure(kind, i, h, `cannot run: ${r.error.message}`);
    if (r.status !== 0) {
      const stderr = r.stderr?.toString().trim().slice(0, 4096) ?? "";
      throw failure(kind, i, h, `failed (${r.signal ?? `exit code ${r.status}`})${stderr ? `: ${stderr}` : ""}`);
    }
  }
}

/** Exactly the hook's env, as runc sets it: none given, none passed. */
function envOf(h: Hook): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const kv of h.env ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}
