// Which network a pod joins, chosen as libcni-based runtimes choose it: the first file of the
// conf dir, in lexical order, whose name ends in .conf, .conflist or .json. A .conflist (or a
// file with "plugins") is a network configuration list; a .conf/.json with "type" is a single
// plugin, run as a list of one. A first file that cannot be used is an error naming it rather
// than a reason to fall through to the next: the administrator meant that file.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FailedPreconditionError } from "../errors";
import type { LoadedNetworkConfig, PluginConfig } from "./types";

const EXTENSIONS = [".conf", ".conflist", ".json"];
/** The spec's network name: it becomes a directory name (host-local) and part of chain names (portmap). */
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** A plugin type is a file name in the bin dirs. */
const PLUGIN_TYPE = /^[^/\0]+$/;

/** The network configuration pods get, or undefined when `dir` holds none (or does not exist). */
export function loadNetworkConfig(dir: string): LoadedNetworkConfig | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new FailedPreconditionError(`cannot read the CNI conf dir ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const first = names.filter((n) => EXTENSIONS.some((e) => n.endsWith(e))).sort()[0];
  if (first === undefined) return undefined;
  const file = join(dir, first);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new FailedPreconditionError(`cannot read CNI network configuration ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseNetworkConfig(text, file);
}

export function parseNetworkConfig(text: string, file: string): LoadedNetworkConfig {
  const invalid = (why: string) => new FailedPreconditionError(`CNI network configuration ${file} ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(`is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw invalid("is not a JSON object");
  const isList = file.endsWith(".conflist") || "plugins" in doc;
  const name = doc.name;
  if (typeof name !== "string" || !NETWORK_NAME.test(name)) {
    throw invalid(`has ${name === undefined ? "no name" : `an invalid name ${JSON.stringify(name)}`}: a network name is letters, digits, "_", "." and "-", starting with a letter or digit`);
  }
  // An absent version is what plugins take for 0.1.0.
  const cniVersion = doc.cniVersion === undefined ? "0.1.0" : doc.cniVersion;
  if (typeof cniVersion !== "string") throw invalid(`has a cniVersion that is not a string: ${JSON.stringify(cniVersion)}`);
  const plugins = isList ? doc.plugins : [doc];
  if (!Array.isArray(plugins) || plugins.length === 0) throw invalid(isList ? 'has no plugins (a .conflist needs a non-empty "plugins" list)' : 'has no "type" (a .conf is one plugin)');
  plugins.forEach((p, i) => {
    const where = isList ? `plugins[${i}]` : "";
    if (!isObject(p) || typeof p.type !== "string" || !PLUGIN_TYPE.test(p.type)) throw invalid(`${where ? `${where} ` : ""}has no plugin "type" (the name of a plugin binary)`);
    if (p.ipam !== undefined && (!isObject(p.ipam) || (p.ipam.type !== undefined && (typeof p.ipam.type !== "string" || !PLUGIN_TYPE.test(p.ipam.type))))) {
      throw invalid(`${where ? `${where} ` : ""}has an "ipam" whose "type" is not a plugin name`);
    }
  });
  const disableCheck = doc.disableCheck === true || doc.disableCheck === "true";
  return { cniVersion, name, plugins: plugins as PluginConfig[], ...(disableCheck ? { disableCheck } : {}), file };
}

/** Every binary the network runs: its plugins and their delegated IPAM plugins. */
export function pluginTypesOf(plugins: PluginConfig[]): string[] {
  const types = plugins.flatMap((p) => [p.type, ...(typeof p.ipam?.type === "string" ? [p.ipam.type] : [])]);
  return [...new Set(types)];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
