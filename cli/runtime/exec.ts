// `berth runtime exec [--process F | --tty --cwd D --env K=V --user U:G --cap C ... ] [--detach] [--pid-file F] [--console-socket S] ID [ARGS...]`
import { parseArgs } from "node:util";
import { constants } from "node:os";
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { execInContainer, readProcessFile } from "../../runtime/oci/exec";
import type { Process } from "../../runtime/oci/spec-types";
import { readRecord } from "../../runtime/oci/state-dir";
import { initCommand } from "./create";
import { reportError, reportWarning, type RuntimeGlobals } from "./index";

/**
 * As runc: exec's own failures (no such container, no such program, a bad cwd...) exit 255, so
 * that a caller such as conmon can tell them from the exit code of a process that ran.
 */
export const EXEC_FAILED = 255;

export async function run(argv: string[], g: RuntimeGlobals): Promise<number> {
  try {
    return await execCommand(argv, g);
  } catch (err) {
    reportError(g, `exec failed: ${err instanceof Error ? err.message : String(err)}`);
    return EXEC_FAILED;
  }
}

async function execCommand(argv: string[], g: RuntimeGlobals): Promise<number> {
  const options = {
    process: { type: "string", short: "p" },
    tty: { type: "boolean", short: "t" },
    detach: { type: "boolean", short: "d" },
    "pid-file": { type: "string" },
    "console-socket": { type: "string" },
    cwd: { type: "string" },
    env: { type: "string", short: "e", multiple: true },
    user: { type: "string", short: "u" },
    cap: { type: "string", short: "c", multiple: true },
    "no-new-privs": { type: "boolean" },
    "preserve-fds": { type: "string" },
    "additional-gids": { type: "string", short: "g", multiple: true },
  } as const;
  // As runc: flags come before the container id; everything after it is the command (its own -c too).
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true });
  const first = tokens.find((t) => t.kind === "positional" || t.kind === "option-terminator");
  const cut = first ? first.index : argv.length;
  const { values } = parseArgs({ args: argv.slice(0, cut), options });
  const positionals = argv.slice(first?.kind === "option-terminator" ? cut + 1 : cut);
  const [id, ...args] = positionals;
  if (!id) throw new Error("usage: berth runtime exec [--process FILE] [--tty] [--detach] ID [ARGS...]");
  let proc: Process;
  if (values.process) {
    proc = readProcessFile(values.process);
  } else {
    // runc: the container's own process settings, with args and the flags on top.
    if (args.length === 0) throw new Error("exec: give the command to run, or --process FILE");
    const base = readRecord(g.root, id).spec.process!;
    const caps = base.capabilities ?? {};
    const extra = (values.cap ?? []).map((c) => (c.startsWith("CAP_") ? c : `CAP_${c.toUpperCase()}`));
    const [uid, gid] = (values.user ?? `${base.user.uid}:${base.user.gid}`).split(":").map(Number);
    proc = {
      ...base,
      args,
      terminal: Boolean(values.tty),
      cwd: values.cwd ?? base.cwd,
      env: [...(base.env ?? []), ...(values.env ?? [])],
      user: { ...base.user, uid: uid ?? 0, gid: gid ?? base.user.gid, additionalGids: values["additional-gids"]?.map(Number) ?? base.user.additionalGids },
      noNewPrivileges: values["no-new-privs"] ?? base.noNewPrivileges,
      capabilities: extra.length
        ? {
            bounding: [...new Set([...(caps.bounding ?? []), ...extra])],
            effective: [...new Set([...(caps.effective ?? []), ...extra])],
            permitted: [...new Set([...(caps.permitted ?? []), ...extra])],
            inheritable: caps.inheritable,
            ambient: caps.ambient,
          }
        : caps,
    };
  }
  const { child } = await execInContainer(linuxSyscalls, {
    root: g.root,
    id,
    process: proc,
    pidFile: values["pid-file"],
    consoleSocket: values["console-socket"],
    preserveFds: values["preserve-fds"] ? Number(values["preserve-fds"]) : 0,
    initCommand: initCommand(),
    warn: (m) => reportWarning(g, m),
  });
  if (values.detach) {
    child.unref();
    return 0;
  }
  return new Promise<number>((resolve) => child.once("exit", (code, signal) => resolve(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1))));
}
