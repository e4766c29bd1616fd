// `berth ps [-a] [-q] [--pod ID] [--state S] [--label K=V]... [-o table|json]`, as crictl ps.
import { parseArgs } from "node:util";
import type * as cri from "../../runtime/api/cri-v1";
import type { CliContext } from "../connect";
import { ago, labelFlags, table } from "./format";
import { resolvePod } from "./resolve";

const STATES: Record<string, cri.ContainerState> = { created: "CONTAINER_CREATED", running: "CONTAINER_RUNNING", exited: "CONTAINER_EXITED", unknown: "CONTAINER_UNKNOWN" };

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { all: { type: "boolean", short: "a" }, quiet: { type: "boolean", short: "q" }, pod: { type: "string", short: "p" }, state: { type: "string" }, label: { type: "string", multiple: true }, output: { type: "string", short: "o" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    ctx.out.write("usage: berth ps [-a] [-q] [--pod POD] [--state created|running|exited] [--label KEY=VALUE]... [-o table|json]\n");
    return 0;
  }
  const client = await ctx.client();
  const filter: Record<string, unknown> = { labelSelector: labelFlags(values.label) };
  if (values.pod) filter.podSandboxId = (await resolvePod(client, values.pod)).id;
  if (values.state) {
    const st = STATES[values.state.toLowerCase()];
    if (!st) throw new Error(`--state must be created, running, exited or unknown, not "${values.state}"`);
    filter.state = { state: st };
  } else if (!values.all) filter.state = { state: "CONTAINER_RUNNING" };
  const { containers } = await client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter });
  const list = [...containers].sort((a, b) => (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : -1));
  if (values.output === "json") {
    ctx.out.write(`${JSON.stringify({ containers: list }, null, 2)}\n`);
    return 0;
  }
  if (values.quiet) {
    ctx.out.write(list.map((c) => `${c.id}\n`).join(""));
    return 0;
  }
  const { items } = await client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
  const podName = new Map(items.map((p) => [p.id, p.metadata?.name ?? ""]));
  const rows = [["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"]];
  for (const c of list) {
    rows.push([c.id.slice(0, 13), c.image?.image ?? c.imageRef, ago(c.createdAt), c.state.replace("CONTAINER_", "").replace(/^(.)(.*)$/, (_, a: string, b: string) => a + b.toLowerCase()), c.metadata?.name ?? "", String(c.metadata?.attempt ?? 0), c.podSandboxId.slice(0, 13), podName.get(c.podSandboxId) ?? ""]);
  }
  ctx.out.write(table(rows));
  return 0;
}
