// `berth runtime create --bundle DIR [--pid-file F] [--console-socket S] [--preserve-fds N] ID`
import { parseArgs } from "node:util";
import { linuxSyscalls } from "../../runtime/linux/syscalls";
import { createContainer } from "../../runtime/oci/create";
import { checkId } from "../../runtime/oci/state-dir";
import { trace } from "../../runtime/oci/trace";
import { reportWarning, type RuntimeGlobals } from "./index";

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
 * The init stage is this same program, `berth runtime init` (the build's dist/berth.js loads its
 * own bundle for it, berth-init.cjs), with the same Node flags but --enable-source-maps: parsing
 * the map costs the stage's boot milliseconds, and the stage reports errors as messages.
 */
export function initCommand(): { execPath: string; args: string[] } {
  const flags = process.execArgv.filter((f) => f !== "--enable-source-maps");
  return { execPath: process.execPath, args: [...flags, "--no-warnings", process.argv[1]!, "runtime", "init"] };
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
    warn: (m) => reportWarning(g, m),
  });
  // The init stays blocked on the exec FIFO; it is reparented to our caller (conmon, a subreaper).
  created.child.unref();
  return 0;
}
