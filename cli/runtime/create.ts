// `berth runtime create --bundle DIR [--pid-file F] [--console-socket S] [--preserve-fds N] ID`
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { createContainer } from "../../runtime/oci/create";
import { checkId } from "../../runtime/oci/state-dir";
import { trace } from "../../runtime/oci/trace";
import type { RuntimeGlobals } from "./index";

export function createFlags() {
  return {
    bundle: { type: "string", short: "b" },
    "pid-file": { type: "string" },
    "console-socket": { type: "string" },
    "preserve-fds": { type: "string" },
    "no-pivot": { type: "boolean" },
    "no-new-keyring": { type: "boolean" },
  } as const;
}

/**
 * The init stage, with the same Node flags: the build's berth-init.cjs beside the running bundle
 * (cli/runtime/init-stage.ts), or else this same program as `berth runtime init CONFIG`.
 */
export function initCommand(): { execPath: string; args: string[] } {
  const main = process.argv[1]!;
  const stage = join(dirname(main), "berth-init.cjs");
  const entry = existsSync(stage) ? [stage] : [main, "runtime", "init"];
  return { execPath: process.execPath, args: [...process.execArgv, "--no-warnings", ...entry] };
}

export async function run(argv: string[], g: RuntimeGlobals): Promise<number> {
  trace("create:loaded");
  const { values, positionals } = parseArgs({ args: argv, options: createFlags(), allowPositionals: true });
  if (positionals.length !== 1) throw new Error("usage: berth runtime create --bundle DIR [--pid-file F] [--console-socket S] ID");
  const created = await createContainer(linuxSyscalls, {
    root: g.root,
    id: checkId(positionals[0]),
    bundle: values.bundle ?? process.cwd(),
    pidFile: values["pid-file"],
    consoleSocket: values["console-socket"],
    preserveFds: values["preserve-fds"] ? Number(values["preserve-fds"]) : 0,
    initCommand: initCommand(),
  });
  // The init stays blocked on the exec FIFO; it is reparented to our caller (conmon, a subreaper).
  created.child.unref();
  return 0;
}
