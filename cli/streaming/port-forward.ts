// `berth port-forward POD [LOCAL:]REMOTE...`: CRI PortForward, then one SPDY connection that
// carries every local connection to its port in the pod (a data and an error stream each), as
// kubectl port-forward does. Runs until interrupted.
import { createServer, type Server } from "node:net";
import type * as cri from "../../runtime/api/cri-v1";
import { forwardConnection, spdyConnect } from "../../cri/streaming/client";
import { resolvePod } from "../pods/resolve";
import type { CliContext } from "../connect";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [target, ...specs] = argv;
  if (!target || !specs.length || target === "--help") {
    ctx.err.write("usage: berth port-forward POD [LOCAL:]REMOTE...\n  listens on 127.0.0.1:LOCAL (REMOTE when LOCAL is omitted, a free port when LOCAL is 0)\n");
    return target === "--help" ? 0 : 2;
  }
  const pairs = specs.map((s) => {
    const [a, b] = s.includes(":") ? s.split(":") : [s, s];
    const local = Number(a);
    const remote = Number(b);
    if (!Number.isInteger(local) || !Number.isInteger(remote) || remote < 1 || remote > 65535 || local < 0 || local > 65535) throw new Error(`"${s}" is not [LOCAL:]REMOTE`);
    return { local, remote };
  });
  const client = await ctx.client();
  const pod = await resolvePod(client, target);
  const { url } = await client.runtimeCall<cri.PortForwardResponse>("PortForward", { podSandboxId: pod.id, port: pairs.map((p) => p.remote) });
  const { session } = await spdyConnect(url, ["portforward.k8s.io"]);
  let requestId = 0;
  const servers: Server[] = [];
  for (const p of pairs) {
    const server = createServer((local) => forwardConnection(session, p.remote, requestId++, local));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(p.local, "127.0.0.1", () => resolve());
    });
    const port = (server.address() as { port: number }).port;
    ctx.out.write(`Forwarding from 127.0.0.1:${port} -> ${p.remote}\n`);
    servers.push(server);
  }
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    session.once("close", resolve);
  });
  for (const s of servers) s.close();
  session.destroy();
  return 0;
}
