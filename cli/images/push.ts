// `berth push IMAGE [TARGET]`: push an image from berth's store, optionally under another name.
import { parseArgs } from "node:util";
import type { CliContext } from "../connect";
import { authFlags, authFromFlags } from "./auth-flags";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...authFlags }, allowPositionals: true });
  if (positionals.length < 1 || positionals.length > 2) {
    ctx.err.write("usage: berth push [--creds USER:PASS] IMAGE [TARGET]\n");
    return 2;
  }
  const client = await ctx.client();
  const { digest } = await client.berthCall<{ digest: string }>("PushImage", { image: positionals[0], target: positionals[1] ?? "", auth: authFromFlags(values) });
  ctx.out.write(`pushed ${positionals[1] ?? positionals[0]}@${digest}\n`);
  return 0;
}
