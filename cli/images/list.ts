// `berth images [-o json|table] [-q] [IMAGE]`: crictl images' columns.
import { parseArgs } from "node:util";
import type { Image } from "../../cri/types";
import type { CliContext } from "../connect";
import { humanBytes, shortDigest, splitTag, table } from "./format";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { output: { type: "string", short: "o" }, quiet: { type: "boolean", short: "q" }, digests: { type: "boolean" } }, allowPositionals: true });
  const client = await ctx.client();
  const filter = positionals[0] ? { image: { image: positionals[0] } } : undefined;
  const { images } = await client.imageCall<{ images: Image[] }>("ListImages", { filter });
  if (values.output === "json") {
    ctx.out.write(`${JSON.stringify({ images }, null, 2)}\n`);
    return 0;
  }
  if (values.output && values.output !== "table") {
    ctx.err.write(`berth images: unknown output format "${values.output}" (json or table)\n`);
    return 2;
  }
  if (values.quiet) {
    ctx.out.write(images.map((i) => `${i.id}\n`).join(""));
    return 0;
  }
  const rows = [values.digests ? ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"] : ["IMAGE", "TAG", "IMAGE ID", "SIZE"]];
  for (const img of images) {
    const digest = img.repoDigests[0] ? shortDigest(img.repoDigests[0].slice(img.repoDigests[0].indexOf("@") + 1)) : "<none>";
    const names = img.repoTags.length ? img.repoTags.map(splitTag) : [[img.repoDigests[0]?.split("@")[0] ?? "<none>", "<none>"] as [string, string]];
    for (const [repo, tag] of names) {
      const row = [repo, tag, shortDigest(img.id), humanBytes(Number(img.size))];
      if (values.digests) row.splice(2, 0, digest);
      rows.push(row);
    }
  }
  ctx.out.write(table(rows));
  return 0;
}
