// Finding a pod or container from what a user types: a full id, a unique id prefix, or a unique
// name (metadata.name), as crictl resolves them. Ambiguity and absence are errors naming the
// candidates, never a guess.
import type { CriClient } from "../../cri/client";
import type * as cri from "../../runtime/api/cri-v1";
import { InvalidArgumentError, NotFoundError } from "../../runtime/errors";

function pick<T extends { id: string; metadata: { name: string } | null }>(items: T[], given: string, what: string): T {
  const exact = items.find((i) => i.id === given);
  if (exact) return exact;
  const byPrefix = items.filter((i) => i.id.startsWith(given));
  const byName = items.filter((i) => i.metadata?.name === given);
  const found = byPrefix.length ? byPrefix : byName;
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new InvalidArgumentError(`"${given}" matches ${found.length} ${what}s: ${found.map((i) => `${i.id.slice(0, 13)} (${i.metadata?.name})`).join(", ")}`);
  throw new NotFoundError(`no ${what} "${given}"`);
}

export async function resolveContainer(client: CriClient, given: string): Promise<cri.Container> {
  const { containers } = await client.runtimeCall<cri.ListContainersResponse>("ListContainers", {});
  return pick(containers, given, "container");
}

export async function resolvePod(client: CriClient, given: string): Promise<cri.PodSandbox> {
  const { items } = await client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
  return pick(items, given, "pod");
}
