// start, state, kill, delete, list: thin wrappers over runtime/oci/lifecycle.
import { writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { openContainerCgroup } from "../../runtime/oci/cgroup-of";
import { containerState, deleteContainer, killContainer, type LifecycleOptions, listContainerIds, parseSignal, startContainer } from "../../runtime/oci/lifecycle";
import { NotFoundError } from "../../runtime/errors";
import { trace } from "../../runtime/oci/trace";
import { reportWarning, type RuntimeGlobals } from "./index";

function lifecycle(g: RuntimeGlobals): LifecycleOptions {
  return { root: g.root, cgroupFor: openContainerCgroup, warn: (m) => reportWarning(g, m) };
}

function oneId(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new Error(`usage: berth runtime ${usage}`);
  return positionals[0]!;
}

export async function start(argv: string[], g: RuntimeGlobals): Promise<number> {
  trace("start:loaded");
  const { positionals } = parseArgs({ args: argv, allowPositionals: true });
  await startContainer(lifecycle(g), oneId(positionals, "start ID"));
  trace("start:done");
  return 0;
}

export async function state(argv: string[], g: RuntimeGlobals): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true });
  const st = await containerState(lifecycle(g), oneId(positionals, "state ID"));
  writeSync(1, `${JSON.stringify(st, null, 2)}\n`);
  return 0;
}

export async function kill(argv: string[], g: RuntimeGlobals): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { all: { type: "boolean", short: "a" } }, allowPositionals: true });
  if (positionals.length < 1 || positionals.length > 2) throw new Error("usage: berth runtime kill [--all] ID [SIGNAL]");
  await killContainer(lifecycle(g), positionals[0]!, parseSignal(positionals[1]), Boolean(values.all));
  return 0;
}

export async function del(argv: string[], g: RuntimeGlobals): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { force: { type: "boolean", short: "f" } }, allowPositionals: true });
  const id = oneId(positionals, "delete [--force] ID");
  try {
    await deleteContainer(lifecycle(g), id, Boolean(values.force));
  } catch (err) {
    // runc: deleting a container that does not exist succeeds with --force.
    if (err instanceof NotFoundError && values.force) return 0;
    throw err;
  }
  return 0;
}

export async function list(argv: string[], g: RuntimeGlobals): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { format: { type: "string", short: "f" }, quiet: { type: "boolean", short: "q" } } });
  const states = [];
  for (const id of listContainerIds(g.root)) {
    try {
      states.push(await containerState(lifecycle(g), id));
    } catch {}
  }
  if (values.quiet) {
    writeSync(1, states.map((s) => `${s.id}\n`).join(""));
  } else if (values.format === "json") {
    writeSync(1, `${JSON.stringify(states)}\n`);
  } else {
    const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner])];
    const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    writeSync(1, `${rows.map((r) => r.map((x, c) => x.padEnd(w[c]! + 4)).join("").trimEnd()).join("\n")}\n`);
  }
  return 0;
}
