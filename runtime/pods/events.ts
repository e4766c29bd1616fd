// Container lifecycle events for CRI GetContainerEvents (kubelet's evented PLEG): created,
// started, stopped, deleted, each with the pod's status and its containers' at that moment.
import type * as cri from "../api/cri-v1";
import type { EventSource } from "../api/runtime";

export class EventHub implements EventSource {
  private readonly listeners = new Set<(e: cri.ContainerEventResponse) => void>();

  subscribe(listener: (event: cri.ContainerEventResponse) => void, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.listeners.add(listener);
    signal.addEventListener("abort", () => this.listeners.delete(listener), { once: true });
  }

  emit(event: cri.ContainerEventResponse): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure (a closed stream) is its own; the others still get the event.
      }
    }
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}
