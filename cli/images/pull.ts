// `berth pull IMAGE`: a live per-layer display on a terminal, one line per event otherwise.
import { parseArgs } from "node:util";
import type { CliContext } from "../connect";
import { humanBytes, shortDigest } from "./format";
import { authFlags, authFromFlags } from "./auth-flags";

interface Progress {
  kind: string;
  digest: string;
  current: string;
  total: string;
  resumedFrom: string;
  imageRef: string;
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...authFlags, quiet: { type: "boolean", short: "q" } }, allowPositionals: true });
  const image = positionals[0];
  if (!image || positionals.length > 1) {
    ctx.err.write("usage: berth pull [--creds USER:PASS] [-q] IMAGE\n");
    return 2;
  }
  const client = await ctx.client();
  const tty = Boolean(ctx.out.isTTY) && !values.quiet;
  const layers = new Map<string, { current: number; total: number; state: string }>();
  const started = Date.now();
  let drawn = 0;
  const draw = () => {
    if (!tty) return;
    if (drawn) ctx.out.write(`\x1b[${drawn}A`);
    const lines = [...layers.entries()].map(([d, l]) => `${shortDigest(d)}  ${l.state.padEnd(11)} ${humanBytes(l.current).padStart(8)} / ${humanBytes(l.total).padEnd(8)}`);
    const cur = [...layers.values()].reduce((n, l) => n + l.current, 0);
    const tot = [...layers.values()].reduce((n, l) => n + l.total, 0);
    const secs = (Date.now() - started) / 1000;
    lines.push(`total        ${humanBytes(cur).padStart(8)} / ${humanBytes(tot).padEnd(8)} ${humanBytes(cur / Math.max(secs, 0.001))}/s`);
    ctx.out.write(`${lines.map((l) => `\x1b[2K${l}`).join("\n")}\n`);
    drawn = lines.length;
  };
  const stream = client.berthStream<Progress>("PullImageWithProgress", { image: { image }, auth: authFromFlags(values) });
  let id = "";
  for await (const ev of stream) {
    const total = Number(ev.total);
    const current = Number(ev.current);
    switch (ev.kind) {
      case "resolved":
        if (!values.quiet) ctx.out.write(`${image}: resolved to ${ev.digest}\n`);
        break;
      case "layer-exists":
        layers.set(ev.digest, { current: total, total, state: "exists" });
        if (!tty && !values.quiet) ctx.out.write(`${shortDigest(ev.digest)}: already present\n`);
        break;
      case "layer-start":
        layers.set(ev.digest, { current, total, state: Number(ev.resumedFrom) > 0 ? "resuming" : "downloading" });
        if (!tty && !values.quiet) ctx.out.write(`${shortDigest(ev.digest)}: downloading ${humanBytes(total)}${Number(ev.resumedFrom) > 0 ? ` (resuming at ${humanBytes(Number(ev.resumedFrom))})` : ""}\n`);
        break;
      case "layer-progress": {
        const l = layers.get(ev.digest);
        if (l) l.current = current;
        break;
      }
      case "layer-done":
        layers.set(ev.digest, { current: total, total, state: "downloaded" });
        if (!tty && !values.quiet) ctx.out.write(`${shortDigest(ev.digest)}: downloaded\n`);
        break;
      case "unpacked": {
        const l = layers.get(ev.digest);
        if (l) l.state = "unpacked";
        if (!tty && !values.quiet) ctx.out.write(`${shortDigest(ev.digest)}: unpacked\n`);
        break;
      }
      case "done":
        id = ev.imageRef;
        break;
    }
    draw();
  }
  ctx.out.write(values.quiet ? `${id}\n` : `Image is up to date for ${id}\n`);
  return 0;
}
