// Finding a pod or container from what a user types: a full id, a unique id prefix, or a unique
// name (metadata.name), as crictl resolves them. Ambiguity and absence are errors naming the
// candidates, never a guess.
import type { CriClient } from "../../cri/client";
import type * as cri from "../../runtime/api/cri-v1";
import { InvalidArgumentError, NotFoundError } from "../../runtime/errors";

function pick<T extends { id: string; metadata: { name: string } | null }>(items: T[], given: string, what: string, live?: (i: T) => boolean): T {
  const exact = items.find((i) => i.id === given);
  if (exact) return exact;
  const byPrefix = items.filter((i) => i.id.startsWith(given));
  const byName = items.filter((i) => i.metadata?.name === given);
  let found = byPrefix.length ? byPrefix : byName;
  // A name that a restarted container shares with its dead instance means the live one.
  if (found.length > 1 && live && found.filter(live).length === 1) found = found.filter(live);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new InvalidArgumentError(`"${given}" matches ${found.length} ${what}s: ${found.map((i) => `${i.id.slice(0, 13)} (${i.metadata?.name})`).join(", ")}`);
  throw new NotFoundError(`no ${what} "${given}"`);
}

export async function resolveContainer(client: CriClient, given: string): Promise<cri.Container> {
  const { containers } = await client.runtimeCall<cri.ListContainersResponse>("ListContainers", {});
  return pick(containers, given, "container", (c) => c.state === "CONTAINER_RUNNING");
}

export async function resolvePod(client: CriClient, given: string): Promise<cri.PodSandbox> {
  const { items } = await client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
  return pick(items, given, "pod", (p) => p.state === "SANDBOX_READY");
}
