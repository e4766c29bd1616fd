// `berth exec [-i] [-t] CONTAINER -- CMD [ARG...]` and `berth attach [-i] CONTAINER`: CRI Exec and
// Attach, then the session over SPDY/3.1 as kubectl runs it: the terminal in raw mode with -t,
// its size sent at the start and on every SIGWINCH, the remote exit code as ours.
import type * as cri from "../../runtime/api/cri-v1";
import { remoteCommand, spdyConnect } from "../../cri/streaming/client";
import { resolveContainer } from "../pods/resolve";
import type { CliContext } from "../connect";

const PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

function flags(args: string[]): { stdin: boolean; tty: boolean; rest: string[] } {
  let stdin = false;
  let tty = false;
  const rest = [...args];
  while (rest[0]?.startsWith("-") && rest[0] !== "--") {
    const f = rest.shift()!;
    if (f === "-i" || f === "--stdin") stdin = true;
    else if (f === "-t" || f === "--tty") tty = true;
    else if (f === "-it" || f === "-ti") stdin = tty = true;
    else throw new Error(`unknown flag ${f}`);
  }
  return { stdin, tty, rest };
}

async function session(ctx: CliContext, url: string, o: { stdin: boolean; tty: boolean }): Promise<number> {
  const stdinTty = process.stdin.isTTY && o.tty;
  const size = () => ({ width: process.stdout.columns ?? 80, height: process.stdout.rows ?? 24 });
  const conn = await spdyConnect(url, PROTOCOLS);
  const s = await remoteCommand(conn, {
    stdin: o.stdin ? process.stdin : undefined,
    stdout: ctx.out,
    stderr: o.tty ? undefined : ctx.err,
    tty: o.tty,
    size: o.tty ? size() : undefined,
  });
  const onWinch = () => s.resize(size().width, size().height);
  if (stdinTty) process.stdin.setRawMode(true);
  if (o.tty) process.on("SIGWINCH", onWinch);
  try {
    return await s.done;
  } finally {
    if (stdinTty) process.stdin.setRawMode(false);
    process.off("SIGWINCH", onWinch);
    process.stdin.pause();
    process.stdin.unref?.();
  }
}

export async function exec(argv: string[], ctx: CliContext): Promise<number> {
  const { stdin, tty, rest } = flags(argv);
  const dash = rest.indexOf("--");
  const target = rest[0];
  const cmd = dash >= 0 ? rest.slice(dash + 1) : rest.slice(1);
  if (!target || cmd.length === 0) {
    ctx.err.write("usage: berth exec [-i] [-t] CONTAINER -- CMD [ARG...]\n");
    return 2;
  }
  const client = await ctx.client();
  const c = await resolveContainer(client, target);
  const { url } = await client.runtimeCall<cri.ExecResponse>("Exec", { containerId: c.id, cmd, stdin, tty, stdout: true, stderr: !tty });
  return session(ctx, url, { stdin, tty });
}

export async function attach(argv: string[], ctx: CliContext): Promise<number> {
  const { stdin, rest } = flags(argv);
  const target = rest[0];
  if (!target) {
    ctx.err.write("usage: berth attach [-i] CONTAINER\n  Ctrl-C detaches; the container keeps running\n");
    return 2;
  }
  const client = await ctx.client();
  const c = await resolveContainer(client, target);
  const st = await client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: c.id, verbose: true });
  const tty = /"tty":\s*true/.test(st.info?.info ?? "");
  const { url } = await client.runtimeCall<cri.AttachResponse>("Attach", { containerId: c.id, stdin, tty, stdout: true, stderr: !tty });
  return session(ctx, url, { stdin, tty });
}
