// CRI names are unique: a pod by name_namespace_uid_attempt, a container by
// name_podname_podnamespace_poduid_attempt (containerd's makeSandboxName/makeContainerName).
// Reserved before anything is made, so two concurrent requests for one name cannot both win.
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { AlreadyExistsError } from "../errors";

export function sandboxName(m: CriRequest<cri.PodSandboxMetadata>): string {
  return [m.name, m.namespace, m.uid, m.attempt ?? 0].join("_");
}

export function containerName(m: CriRequest<cri.ContainerMetadata>, pod: CriRequest<cri.PodSandboxMetadata>): string {
  return [m.name, pod.name, pod.namespace, pod.uid, m.attempt ?? 0].join("_");
}

export class NameIndex {
  private readonly owners = new Map<string, string>();

  /** Claims `name` for `id`; ALREADY_EXISTS naming the holder when another id has it. */
  reserve(name: string, id: string, what: string): void {
    const holder = this.owners.get(name);
    if (holder !== undefined && holder !== id) {
      throw new AlreadyExistsError(`${what} name "${name}" is already in use by ${holder}; remove it first or use another attempt number`);
    }
    this.owners.set(name, id);
  }

  release(name: string, id: string): void {
    if (this.owners.get(name) === id) this.owners.delete(name);
  }
}
