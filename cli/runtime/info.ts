// `berth runtime features` (runtime-spec features JSON) and `berth runtime spec` (a default config.json).
import { existsSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { defaultSpec } from "../../runtime/oci/default-spec";
import { runtimeFeatures } from "../../runtime/oci/features";
import type { RuntimeGlobals } from "./index";

export async function features(): Promise<number> {
  writeSync(1, `${JSON.stringify(runtimeFeatures(), null, 4)}\n`);
  return 0;
}

export async function spec(argv: string[], _g: RuntimeGlobals): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { bundle: { type: "string", short: "b" }, rootless: { type: "boolean" } } });
  const file = join(values.bundle ?? ".", "config.json");
  if (existsSync(file)) throw new Error(`File ${file} exists. Remove it first`);
  writeFileSync(file, `${JSON.stringify(defaultSpec(), null, "\t")}\n`);
  return 0;
}
