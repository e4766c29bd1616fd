// `berth image import PATH [--name NAME]`: an OCI layout directory, an OCI archive or a Docker archive.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Image } from "../../cri/types";
import type { CliContext } from "../connect";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "import") {
    ctx.err.write("usage: berth image import [--name NAME] PATH\n");
    return 2;
  }
  const { values, positionals } = parseArgs({ args: rest, options: { name: { type: "string" } }, allowPositionals: true });
  if (positionals.length !== 1) {
    ctx.err.write("usage: berth image import [--name NAME] PATH\n");
    return 2;
  }
  const client = await ctx.client();
  // The daemon reads the path: make it absolute so it does not depend on the daemon's cwd.
  const { images } = await client.berthCall<{ images: Image[] }>("ImportImage", { path: resolve(positionals[0]!), name: values.name ?? "" });
  for (const img of images) ctx.out.write(`imported ${img.repoTags[0] ?? img.id} (${img.id})\n`);
  return 0;
}
