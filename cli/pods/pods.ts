// `berth pods [-q] [--state ready|notready] [--label K=V]... [-o table|json]`, as crictl pods.
import { parseArgs } from "node:util";
import type * as cri from "../../runtime/api/cri-v1";
import type { CliContext } from "../connect";
import { ago, labelFlags, table } from "./format";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { quiet: { type: "boolean", short: "q" }, state: { type: "string" }, label: { type: "string", multiple: true }, output: { type: "string", short: "o" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    ctx.out.write("usage: berth pods [-q] [--state ready|notready] [--label KEY=VALUE]... [-o table|json]\n");
    return 0;
  }
  const filter: Record<string, unknown> = { labelSelector: labelFlags(values.label) };
  if (values.state) filter.state = { state: values.state.toLowerCase() === "ready" ? "SANDBOX_READY" : "SANDBOX_NOTREADY" };
  const client = await ctx.client();
  const { items } = await client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", { filter });
  const pods = [...items].sort((a, b) => (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : -1));
  if (values.output === "json") ctx.out.write(`${JSON.stringify({ items: pods }, null, 2)}\n`);
  else if (values.quiet) ctx.out.write(pods.map((p) => `${p.id}\n`).join(""));
  else {
    const rows = [["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]];
    for (const p of pods) rows.push([p.id.slice(0, 13), ago(p.createdAt), p.state === "SANDBOX_READY" ? "Ready" : "NotReady", p.metadata?.name ?? "", p.metadata?.namespace ?? "", String(p.metadata?.attempt ?? 0), p.runtimeHandler || "(default)"]);
    ctx.out.write(table(rows));
  }
  return 0;
}
