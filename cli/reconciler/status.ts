// `berth status [-o json] [--api HOST:PORT] [KIND/NAMESPACE/NAME]`: what the reconciler says
// about each object, from the daemon's status API.
import { parseArgs } from "node:util";
import type { ObjectStatus } from "../../reconciler/status";
import type { CliContext } from "../connect";
import { table } from "../pods/format";
import { daemonInfo } from "./daemon-info";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { output: { type: "string", short: "o" }, api: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    ctx.out.write("usage: berth status [-o table|json] [--api HOST:PORT] [KIND/NAMESPACE/NAME]\n");
    return 0;
  }
  const api = values.api ?? (await daemonInfo(ctx.socket))?.http ?? "127.0.0.1:9464";
  const res = await fetch(`http://${api}/api/v1/objects`).catch((err: Error) => {
    throw new Error(`cannot reach berth's status API at ${api}: ${(err.cause as Error | undefined)?.message ?? err.message} (is berth serve running? --api HOST:PORT)`);
  });
  const body = (await res.json()) as { manifests: string | null; revision: string | null; lastSyncAt: string | null; objects: ObjectStatus[] };
  let objects = body.objects;
  if (positionals[0]) {
    const [kind, ns, name] = positionals[0].split("/");
    objects = objects.filter((o) => o.kind.toLowerCase() === kind?.toLowerCase() && (!ns || o.namespace === ns) && (!name || o.name === name));
    if (!objects.length) {
      ctx.err.write(`berth status: no object ${positionals[0]}\n`);
      return 1;
    }
  }
  if (values.output === "json") {
    ctx.out.write(`${JSON.stringify({ ...body, objects }, null, 2)}\n`);
    return 0;
  }
  if (!body.manifests) {
    ctx.out.write("the daemon runs no reconciler (berth serve --manifests DIR)\n");
    return 0;
  }
  ctx.out.write(`manifests ${body.manifests}${body.revision ? ` at ${body.revision}` : ""}, last sync ${body.lastSyncAt ?? "never"}\n`);
  const rows = [["KIND", "NAMESPACE", "NAME", "SYNC", "HEALTH", "READY", "RESTARTS", "DRIFT", "REVISION", "MESSAGE"]];
  for (const o of objects) {
    const ready = o.kind === "ConfigMap" ? "-" : o.replicas ? `${o.replicas.ready}/${o.replicas.desired}` : `${o.pods.filter((p) => p.ready).length}/${o.pods.length || 1}`;
    const pull = o.pods.find((p) => p.pull)?.pull;
    const msg = o.lastError ? `error: ${o.lastError.message}` : pull ? `pulling ${pull.image} ${pull.total ? `${Math.round((100 * pull.current) / pull.total)}%` : ""}` : o.message;
    rows.push([o.kind, o.namespace, o.name, o.sync, o.health, ready, String(o.restarts), String(o.drift), (o.revision ?? "").slice(0, 12), msg.slice(0, 100)]);
  }
  ctx.out.write(table(rows));
  return 0;
}
