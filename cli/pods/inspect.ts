// `berth inspect CONTAINER|POD`: the verbose CRI status as JSON (crictl inspect / inspectp).
import type * as cri from "../../runtime/api/cri-v1";
import { NotFoundError } from "../../runtime/errors";
import type { CliContext } from "../connect";
import { resolveContainer, resolvePod } from "./resolve";

function withInfo(res: { info: Record<string, string> }): Record<string, unknown> {
  const info: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(res.info)) {
    try {
      info[k] = JSON.parse(v);
    } catch {
      info[k] = v;
    }
  }
  return { ...res, info };
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  if (argv.length !== 1 || argv[0] === "--help" || argv[0] === "-h") {
    (argv[0]?.startsWith("-h") || argv[0] === "--help" ? ctx.out : ctx.err).write("usage: berth inspect CONTAINER|POD\n");
    return argv.length === 1 ? 0 : 2;
  }
  const client = await ctx.client();
  try {
    const c = await resolveContainer(client, argv[0]!);
    const res = await client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: c.id, verbose: true });
    ctx.out.write(`${JSON.stringify(withInfo(res), null, 2)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  const p = await resolvePod(client, argv[0]!).catch((err: unknown) => {
    if (err instanceof NotFoundError) throw new NotFoundError(`no container or pod "${argv[0]}"`);
    throw err;
  });
  const res = await client.runtimeCall<cri.PodSandboxStatusResponse>("PodSandboxStatus", { podSandboxId: p.id, verbose: true });
  ctx.out.write(`${JSON.stringify(withInfo(res), null, 2)}\n`);
  return 0;
}
