// `berth stop [-t S] CONTAINER...`, `berth rm [-f] CONTAINER...`, `berth stopp POD...`,
// `berth rmp [-f] POD...`: crictl's stop, rm, stopp and rmp.
import { parseArgs } from "node:util";
import type { CriClient } from "../../cri/client";
import type * as cri from "../../runtime/api/cri-v1";
import type { CliContext } from "../connect";
import { resolveContainer, resolvePod } from "./resolve";

type Action = (client: CriClient, id: string, opts: { timeout: string; force: boolean }) => Promise<void>;

const ACTIONS: Record<string, { usage: string; kind: "container" | "pod"; act: Action }> = {
  stop: { usage: "berth stop [-t SECONDS] CONTAINER...", kind: "container", act: async (c, id, o) => void (await c.runtimeCall("StopContainer", { containerId: id, timeout: o.timeout })) },
  rm: {
    usage: "berth rm [-f] CONTAINER...",
    kind: "container",
    act: async (c, id, o) => {
      if (!o.force) {
        const { status } = await c.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: id });
        if (status?.state === "CONTAINER_RUNNING") throw new Error(`container ${id.slice(0, 13)} is running: stop it first or use -f`);
      }
      await c.runtimeCall("RemoveContainer", { containerId: id });
    },
  },
  stopp: { usage: "berth stopp POD...", kind: "pod", act: async (c, id) => void (await c.runtimeCall("StopPodSandbox", { podSandboxId: id })) },
  rmp: {
    usage: "berth rmp [-f] POD...",
    kind: "pod",
    act: async (c, id, o) => {
      if (!o.force) {
        const { status } = await c.runtimeCall<cri.PodSandboxStatusResponse>("PodSandboxStatus", { podSandboxId: id });
        if (status?.state === "SANDBOX_READY") throw new Error(`pod ${id.slice(0, 13)} is ready: stop it first (berth stopp) or use -f`);
      }
      await c.runtimeCall("RemovePodSandbox", { podSandboxId: id });
    },
  },
};

export function command(name: keyof typeof ACTIONS) {
  return {
    async run(argv: string[], ctx: CliContext): Promise<number> {
      const a = ACTIONS[name]!;
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { timeout: { type: "string", short: "t" }, force: { type: "boolean", short: "f" }, help: { type: "boolean", short: "h" } } });
      if (values.help || positionals.length === 0) {
        (values.help ? ctx.out : ctx.err).write(`usage: ${a.usage}\n`);
        return values.help ? 0 : 2;
      }
      const client = await ctx.client();
      let failed = 0;
      for (const given of positionals) {
        try {
          const id = a.kind === "container" ? (await resolveContainer(client, given)).id : (await resolvePod(client, given)).id;
          await a.act(client, id, { timeout: values.timeout ?? "10", force: Boolean(values.force) });
          ctx.out.write(`${id}\n`);
        } catch (err) {
          ctx.err.write(`berth ${name}: ${given}: ${(err as Error).message}\n`);
          failed++;
        }
      }
      return failed ? 1 : 0;
    },
  };
}
