// `berth rmi IMAGE...`: by name, tag or ID, as crictl rmi.
import type { Image } from "../../cri/types";
import type { CliContext } from "../connect";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  if (argv.length === 0) {
    ctx.err.write("usage: berth rmi IMAGE [IMAGE...]\n");
    return 2;
  }
  const client = await ctx.client();
  let failed = 0;
  for (const name of argv) {
    const { image } = await client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image: name } });
    if (!image) {
      ctx.err.write(`berth rmi: no such image: ${name}\n`);
      failed++;
      continue;
    }
    try {
      await client.imageCall("RemoveImage", { image: { image: name } });
      ctx.out.write(`Deleted: ${name}\n`);
    } catch (err) {
      ctx.err.write(`berth rmi: ${name}: ${(err as Error).message}\n`);
      failed++;
    }
  }
  return failed ? 1 : 0;
}
