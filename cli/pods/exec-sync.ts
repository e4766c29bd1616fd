// `berth exec-sync [--timeout S] CONTAINER -- CMD [ARG...]`: CRI ExecSync; the command's output on
// stdout/stderr and its exit code as ours.
import type * as cri from "../../runtime/api/cri-v1";
import type { CliContext } from "../connect";
import { resolveContainer } from "./resolve";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  let timeout = "0";
  const args = [...argv];
  if (args[0] === "--timeout") {
    args.shift();
    timeout = args.shift() ?? "";
    if (!/^\d+$/.test(timeout)) throw new Error("--timeout wants whole seconds");
  }
  const dash = args.indexOf("--");
  const target = args[0];
  const cmd = dash >= 0 ? args.slice(dash + 1) : args.slice(1);
  if (!target || target === "--help" || cmd.length === 0) {
    (target === "--help" ? ctx.out : ctx.err).write("usage: berth exec-sync [--timeout SECONDS] CONTAINER -- CMD [ARG...]\n");
    return target === "--help" ? 0 : 2;
  }
  const client = await ctx.client();
  const c = await resolveContainer(client, target);
  const r = await client.runtimeCall<cri.ExecSyncResponse>("ExecSync", { containerId: c.id, cmd, timeout });
  ctx.out.write(Buffer.from(r.stdout));
  ctx.err.write(Buffer.from(r.stderr));
  return r.exitCode;
}
