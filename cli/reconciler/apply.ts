// `berth diff DIR` prints what applying DIR would do (create / replace with the changed fields /
// delete), touching nothing; `berth apply DIR` does it once through the daemon's CRI socket and
// waits until every object is synced. Both exit 1 when the folder has errors.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { remoteBackend } from "../../cri/remote-runtime";
import { formatPlan } from "../../reconciler/plan";
import { Reconciler } from "../../reconciler/reconciler";
import { diagnosticText, type ManifestSet } from "../../reconciler/types";
import { createLogger } from "../../runtime/log";
import type { CliContext } from "../connect";
import { daemonInfo } from "./daemon-info";

function printDiagnostics(set: ManifestSet, ctx: CliContext): void {
  for (const d of set.diagnostics) ctx.err.write(`${diagnosticText(d)}\n`);
}

export function command(mode: "diff" | "apply") {
  return {
    async run(argv: string[], ctx: CliContext): Promise<number> {
      const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { output: { type: "string", short: "o" }, timeout: { type: "string" }, "state-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
      });
      if (values.help || positionals.length !== 1) {
        ctx.out.write(
          mode === "diff"
            ? "usage: berth diff [-o json] DIR\n  the plan applying DIR would make: create, replace (with the changed fields), delete\n"
            : "usage: berth apply [--timeout SECONDS] [--state-dir DIR] DIR\n  apply DIR once through the daemon and wait until every object is synced\n",
        );
        return values.help ? 0 : 2;
      }
      const dir = resolve(positionals[0]!);
      const client = await ctx.client();
      const backend = remoteBackend(client);
      const quiet = createLogger({ level: "error", out: ctx.err });
      if (mode === "diff") {
        const scratch = await mkdtemp(join(tmpdir(), "berth-diff-"));
        try {
          const r = new Reconciler({ manifests: dir, stateDir: scratch, backend, log: quiet, watch: false, persist: false, resyncMs: 0 });
          const set = await r.load();
          printDiagnostics(set, ctx);
          const actions = await r.plan();
          ctx.out.write(values.output === "json" ? `${JSON.stringify({ actions, diagnostics: set.diagnostics }, null, 2)}\n` : formatPlan(actions));
          return set.diagnostics.length ? 1 : 0;
        } finally {
          await rm(scratch, { recursive: true, force: true });
        }
      }
      const info = await daemonInfo(ctx.socket);
      const stateDir = values["state-dir"] ?? (info ? join(info.root, "reconciler") : "/var/lib/berth/reconciler");
      const log = createLogger({ level: "info", format: "text", out: ctx.err });
      const r = new Reconciler({ manifests: dir, stateDir, backend, log, watch: false, resyncMs: 0 });
      await r.start();
      const ok = await r.settled(Number(values.timeout ?? 300) * 1000);
      await r.stop();
      const status = r.status();
      for (const s of status) ctx.out.write(`${s.kind}/${s.namespace}/${s.name}: ${s.sync} ${s.health}${s.lastError ? ` (${s.lastError.message})` : s.message ? ` (${s.message})` : ""}\n`);
      const errors = status.some((s) => s.lastError || s.health === "Degraded");
      if (!ok) ctx.err.write("berth apply: not every object is synced and healthy yet (the pods go on; see berth status)\n");
      return ok && !errors ? 0 : 1;
    },
  };
}
