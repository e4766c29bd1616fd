// Entry point of the `berth` command. Each subcommand's module is imported only when it runs,
// so `berth runtime` (called by conmon for every container) loads none of the daemon's code.
import { type CliContext, cliContext } from "./connect";

type Command = { run(argv: string[], ctx: CliContext): Promise<number> };

const commands: Record<string, { about: string; load: () => Promise<Command> }> = {
  serve: { about: "run the daemon (CRI socket, metrics)", load: () => import("./serve/index") },
  pull: { about: "pull an image through the daemon, with progress", load: () => import("./images/pull") },
  images: { about: "list images", load: () => import("./images/list") },
  rmi: { about: "remove images", load: () => import("./images/remove") },
  image: { about: "image subcommands: import", load: () => import("./images/image") },
  runtime: { about: "the low-level OCI runtime (runc-compatible; conmon calls it)", load: () => import("./runtime/index").then((m) => ({ run: (argv: string[]) => m.run(argv).then((code) => process.exit(code)) })) },
  push: { about: "push an image from the store to a registry", load: () => import("./images/push") },
  pods: { about: "list pod sandboxes", load: () => import("./pods/pods") },
  ps: { about: "list containers (running; -a for all)", load: () => import("./pods/ps") },
  logs: { about: "print a container's log (-f to follow)", load: () => import("./pods/logs") },
  inspect: { about: "a container's or pod's status, verbose, as JSON", load: () => import("./pods/inspect") },
  "exec-sync": { about: "run a command in a container and wait for it", load: () => import("./pods/exec-sync") },
  "run-pod": { about: "run a pod and its containers from CRI config files (crictl runp + create + start)", load: () => import("./pods/run-pod") },
  stop: { about: "stop containers", load: () => import("./pods/remove").then((m) => m.command("stop")) },
  rm: { about: "remove containers", load: () => import("./pods/remove").then((m) => m.command("rm")) },
  stopp: { about: "stop pods", load: () => import("./pods/remove").then((m) => m.command("stopp")) },
  rmp: { about: "remove pods", load: () => import("./pods/remove").then((m) => m.command("rmp")) },
  exec: { about: "run a command in a container, streamed (-i stdin, -t terminal), through CRI Exec", load: () => import("./streaming/exec").then((m) => ({ run: m.exec })) },
  attach: { about: "attach to a container's stdio (-i to send stdin); Ctrl-C detaches", load: () => import("./streaming/exec").then((m) => ({ run: m.attach })) },
  "port-forward": { about: "forward local ports to ports in a pod, through CRI PortForward", load: () => import("./streaming/port-forward") },
  status: { about: "the reconciler's view of each manifest object (sync, health, restarts, drift)", load: () => import("./reconciler/status") },
  diff: { about: "what applying a folder of manifests would change, without changing it", load: () => import("./reconciler/apply").then((m) => m.command("diff")) },
  apply: { about: "apply a folder of manifests once through the daemon and wait for it", load: () => import("./reconciler/apply").then((m) => m.command("apply")) },
};

const USAGE = `usage: berth [--socket PATH] <command> [options]

global options:
  --socket PATH   the daemon's socket (default $BERTH_SOCKET or /run/berth/berth.sock)

commands:
${Object.entries(commands)
  .map(([n, c]) => `  ${n.padEnd(10)} ${c.about}`)
  .join("\n")}
`;

async function main(argv: string[]): Promise<number> {
  let socket: string | undefined;
  while (argv[0]?.startsWith("--socket")) {
    const a = argv.shift()!;
    socket = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv.shift();
  }
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    (name ? process.stdout : process.stderr).write(USAGE);
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`berth: unknown command "${name}" (try berth --help)\n`);
    return 2;
  }
  const ctx = cliContext(socket);
  try {
    return await (await cmd.load()).run(rest, ctx);
  } finally {
    ctx.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
