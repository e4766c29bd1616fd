// RuntimeService Version and Status: what kubelet asks first, and keeps asking, to know whether
// the node can run pods.
import type { RuntimeCondition } from "./types";

export const BERTH_VERSION = "0.1.0";

export interface RuntimeHealth {
  /** Conditions kubelet gates on: RuntimeReady and NetworkReady (with reason and message when false). */
  conditions(): Promise<RuntimeCondition[]>;
  /** Extra detail for `crictl info` (verbose). */
  info(): Record<string, unknown>;
}

export function runtimeStatusHandlers(health: RuntimeHealth) {
  return {
    Version: async () => ({
      // The CRI "version" field is the kubelet API version, 0.1.0 for every runtime.
      version: "0.1.0",
      runtimeName: "berth",
      runtimeVersion: BERTH_VERSION,
      runtimeApiVersion: "v1",
    }),
    Status: async (req: { verbose?: boolean }) => ({
      status: { conditions: await health.conditions() },
      info: req.verbose ? { config: JSON.stringify(health.info()) } : {},
      runtimeHandlers: [],
    }),
  };
}
