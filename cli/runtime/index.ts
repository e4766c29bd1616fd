// `berth runtime`: the runc-compatible command conmon (and CRI-O or podman) drive. Global flags
// and exit codes as runc's: errors go to stderr (and to --log, as JSON with --log-format json)
// and exit 1. stderr is written with writeSync: a Node stream would switch the shared pipe to
// non-blocking mode under the container's init, which inherits it.
import { appendFileSync, writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEFAULT_RUNTIME_ROOT } from "../../runtime/oci/state-dir";
import { trace } from "../../runtime/oci/trace";

export interface RuntimeGlobals {
  root: string;
  log?: string;
  logFormat: "text" | "json";
  debug: boolean;
}

type Sub = (argv: string[], g: RuntimeGlobals) => Promise<number>;

const subcommands: Record<string, () => Promise<{ run: Sub }>> = {
  create: () => import("./create"),
  start: () => import("./simple").then((m) => ({ run: m.start })),
  state: () => import("./simple").then((m) => ({ run: m.state })),
  kill: () => import("./simple").then((m) => ({ run: m.kill })),
  delete: () => import("./simple").then((m) => ({ run: m.del })),
  list: () => import("./simple").then((m) => ({ run: m.list })),
  exec: () => import("./exec"),
  run: () => import("./run"),
  features: () => import("./info").then((m) => ({ run: m.features })),
  spec: () => import("./info").then((m) => ({ run: m.spec })),
  init: () => import("./init-entry"),
};

const USAGE = `usage: berth runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [options] ID

A runc-compatible OCI runtime. Commands: create, start, state, kill, delete, exec, run, list, features, spec
`;

export function reportError(g: Pick<RuntimeGlobals, "log" | "logFormat">, message: string): void {
  report(g, "error", message);
}

/**
 * A warning goes to --log when there is one, and to stderr only without it, as runc's logrus does:
 * under conmon the runtime's stderr is the container's (create) or the exec's own stderr, where a
 * line of ours would read as the program's output.
 */
export function reportWarning(g: Pick<RuntimeGlobals, "log" | "logFormat">, message: string): void {
  report(g, "warning", message);
}

function report(g: Pick<RuntimeGlobals, "log" | "logFormat">, level: "error" | "warning", message: string): void {
  if (g.log) {
    const time = new Date().toISOString();
    const line = g.logFormat === "json" ? `${JSON.stringify({ level, msg: message, time })}\n` : `time="${time}" level=${level} msg="${message.replace(/"/g, '\\"')}"\n`;
    try {
      appendFileSync(g.log, line);
      // An error still goes to stderr too (runc's fatal does both): it is what conmon reports.
      // A warning the log could not take goes there as well rather than nowhere.
      if (level === "warning") return;
    } catch {}
  }
  writeSync(2, `berth runtime: ${level === "warning" ? "warning: " : ""}${message}\n`);
}

export async function run(argv: string[]): Promise<number> {
  trace("runtime:cli");
  const { values, tokens } = parseArgs({
    args: argv,
    options: {
      root: { type: "string" },
      log: { type: "string" },
      "log-format": { type: "string" },
      debug: { type: "boolean" },
      "systemd-cgroup": { type: "boolean" },
      criu: { type: "string" },
      rootless: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  // Global flags end at the first positional: the subcommand.
  const first = tokens.find((t) => t.kind === "positional");
  const g: RuntimeGlobals = {
    root: (values.root as string | undefined) ?? DEFAULT_RUNTIME_ROOT,
    log: values.log as string | undefined,
    logFormat: values["log-format"] === "json" ? "json" : "text",
    debug: Boolean(values.debug),
  };
  if (values.help) {
    writeSync(1, USAGE);
    return 0;
  }
  if (!first) {
    writeSync(2, USAGE);
    return 2;
  }
  if (values["systemd-cgroup"]) {
    reportError(g, "--systemd-cgroup is not supported: berth manages cgroups with the cgroupfs driver");
    return 1;
  }
  const name = first.value;
  const load = subcommands[name];
  if (!load) {
    reportError(g, `unknown command "${name}"`);
    return 2;
  }
  const rest = argv.slice(first.index + 1);
  try {
    return await (await load()).run(rest, g);
  } catch (err) {
    reportError(g, err instanceof Error ? err.message : String(err));
    return 1;
  }
}

/**
 * For the build only (cli/runtime/warm-up.ts): runs create's code that has no side effects on
 * sample configs, so that the code cache made afterwards holds it compiled.
 */
export async function warmCodeCache(configs: unknown[]): Promise<void> {
  await import("./create");
  const { preSpawnView, validateSpec } = await import("../../runtime/oci/validate");
  const { compileContainerSeccomp } = await import("../../runtime/oci/seccomp-of");
  const { deviceRules } = await import("../../runtime/oci/cgroup-of");
  for (const config of configs) {
    const spec = preSpawnView(config);
    if (!spec) throw new Error("warm-up: a sample config is not one create reads before its schema check");
    await validateSpec(config, "warm-up");
    await compileContainerSeccomp(spec);
    deviceRules(spec);
  }
}
