// `berth runtime run --bundle DIR ID`: create, start, wait, delete; exits with the container's
// exit code (128 + signal when it was killed), as runc run does.
import { parseArgs } from "node:util";
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { openContainerCgroup } from "../../runtime/oci/cgroup-of";
import { createContainer } from "../../runtime/oci/create";
import { deleteContainer, startContainer } from "../../runtime/oci/lifecycle";
import { checkId } from "../../runtime/oci/state-dir";
import { trace } from "../../runtime/oci/trace";
import { constants } from "node:os";
import { createFlags, initCommand } from "./create";
import { reportWarning, type RuntimeGlobals } from "./index";

const FORWARDED: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"];

export async function run(argv: string[], g: RuntimeGlobals): Promise<number> {
  trace("create:loaded");
  const { values, positionals } = parseArgs({ args: argv, options: { ...createFlags(), detach: { type: "boolean", short: "d" }, keep: { type: "boolean" } }, allowPositionals: true });
  if (positionals.length !== 1) throw new Error("usage: berth runtime run --bundle DIR ID");
  const id = checkId(positionals[0]);
  const created = await createContainer(linuxSyscalls, {
    root: g.root,
    id,
    bundle: values.bundle ?? process.cwd(),
    pidFile: values["pid-file"],
    consoleSocket: values["console-socket"],
    preserveFds: values["preserve-fds"] ? Number(values["preserve-fds"]) : 0,
    initCommand: initCommand(),
    warn: (m) => reportWarning(g, m),
  });
  const lifecycle = { root: g.root, cgroupFor: openContainerCgroup, warn: (m: string) => reportWarning(g, m) };
  const exited = new Promise<number>((resolve) =>
    created.child.once("exit", (code, signal) => resolve(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1))),
  );
  try {
    await startContainer(lifecycle, id);
  } catch (err) {
    await deleteContainer(lifecycle, id, true).catch(() => {});
    throw err;
  }
  if (values.detach) {
    created.child.unref();
    return 0;
  }
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(created.record.pid, sig);
    } catch {}
  };
  for (const s of FORWARDED) process.on(s, forward);
  const code = await exited;
  for (const s of FORWARDED) process.off(s, forward);
  if (!values.keep) await deleteContainer(lifecycle, id, true);
  return code;
}
