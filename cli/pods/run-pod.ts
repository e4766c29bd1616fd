// `berth run-pod [--pull] POD_CONFIG [CONTAINER_CONFIG...]`: crictl runp + create + start in one
// command. The files are CRI PodSandboxConfig and ContainerConfig documents in JSON or YAML, with
// the protobuf's snake_case field names as crictl writes them (camelCase is accepted too).
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { load } from "js-yaml";
import type * as cri from "../../runtime/api/cri-v1";
import { InvalidArgumentError } from "../../runtime/errors";
import type { CliContext } from "../connect";

/** Fields whose keys are the user's own (label names, sysctl names), not protobuf field names. */
const MAPS = new Set(["labels", "annotations", "sysctls", "unified"]);

export function camelCaseKeys(value: unknown, inMap = false): unknown {
  if (Array.isArray(value)) return value.map((v) => camelCaseKeys(v));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = inMap ? k : k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    out[key] = inMap ? v : camelCaseKeys(v, MAPS.has(key));
  }
  return out;
}

/**
 * CRI's KeyValue.value is bytes on the wire, and grpc-js would read a string there as base64:
 * env values from a file go as their UTF-8 bytes.
 */
export function envValuesAsBytes(config: Record<string, unknown>): Record<string, unknown> {
  const envs = config.envs as Array<{ key?: string; value?: unknown }> | undefined;
  if (!Array.isArray(envs)) return config;
  return { ...config, envs: envs.map((e) => ({ ...e, value: Buffer.from(String(e.value ?? ""), "utf8") })) };
}

export async function readConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = load(text, { filename: path });
  } catch (err) {
    throw new InvalidArgumentError(`${path} is not valid JSON or YAML: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new InvalidArgumentError(`${path}: expected a CRI config object`);
  return camelCaseKeys(doc) as Record<string, unknown>;
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { pull: { type: "boolean" }, runtime: { type: "string", short: "r" }, help: { type: "boolean", short: "h" } } });
  if (values.help || positionals.length === 0) {
    (values.help ? ctx.out : ctx.err).write("usage: berth run-pod [--pull] [--runtime HANDLER] POD_CONFIG.{json,yaml} [CONTAINER_CONFIG.{json,yaml}...]\n");
    return values.help ? 0 : 2;
  }
  const [podFile, ...ctrFiles] = positionals as [string, ...string[]];
  const podConfig = await readConfig(podFile);
  const ctrConfigs = (await Promise.all(ctrFiles.map(readConfig))).map(envValuesAsBytes);
  const client = await ctx.client();
  const { podSandboxId } = await client.runtimeCall<cri.RunPodSandboxResponse>("RunPodSandbox", { config: podConfig, runtimeHandler: values.runtime ?? "" });
  ctx.out.write(`${podSandboxId}\n`);
  for (const [i, config] of ctrConfigs.entries()) {
    const image = (config.image as { image?: string } | undefined)?.image;
    if (values.pull && image) await client.imageCall("PullImage", { image: { image } });
    try {
      const { containerId } = await client.runtimeCall<cri.CreateContainerResponse>("CreateContainer", { podSandboxId, config, sandboxConfig: podConfig });
      await client.runtimeCall("StartContainer", { containerId });
      ctx.out.write(`${containerId}\n`);
    } catch (err) {
      throw new Error(`${ctrFiles[i]}: ${(err as Error).message} (the pod ${podSandboxId.slice(0, 13)} stays; remove it with berth rmp -f)`);
    }
  }
  return 0;
}
