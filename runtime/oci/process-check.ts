// What runc refuses in a process (its config validator and init), checked before anything is
// made, for create and exec alike: each of these would otherwise run as something other than
// what the config says.
import type { Process } from "./spec-types";

/** runc's range for ids: (uid_t)-1 is "leave unchanged" to setresuid, which would keep root. */
const MAX_ID = 2 ** 31 - 1;

/**
 * Why `proc` cannot run as written; undefined when it can. `at` prefixes the field names. Values
 * of the wrong type are left to the schema check, which names them.
 */
export function processProblem(proc: Process, at = "process"): string | undefined {
  const user = proc.user as Partial<Process["user"]> | undefined;
  const ids: Array<[string, unknown]> = [
    ["uid", user?.uid],
    ["gid", user?.gid],
    ...(Array.isArray(user?.additionalGids) ? user.additionalGids.map((g, i): [string, unknown] => [`additionalGids[${i}]`, g]) : []),
  ];
  for (const [field, id] of ids) {
    if (typeof id === "number" && (!Number.isInteger(id) || id < 0 || id > MAX_ID)) return `${at}.user.${field} ${id} is out of range: uids and gids are 0-${MAX_ID}`;
  }
  const env: unknown[] = Array.isArray(proc.env) ? proc.env : [];
  const bad = env.findIndex((e) => typeof e === "string" && (!e.includes("=") || e.startsWith("=")));
  if (bad >= 0) return `${at}.env[${bad}] ${JSON.stringify(env[bad])} is not NAME=VALUE`;
  const oom: unknown = proc.oomScoreAdj;
  if (typeof oom === "number" && (oom < -1000 || oom > 1000)) return `${at}.oomScoreAdj ${oom} is out of range: -1000 to 1000`;
  return undefined;
}
