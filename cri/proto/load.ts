// The CRI v1 wire definition (k8s.io/cri-api v0.36.3, runtime-v1.json) plus berth's own small
// service for what CRI has no RPC for (pull progress, import, push), loaded into one root so
// berth's messages can reuse CRI's types. Loaded once per process: parsing costs ~30 ms.
import * as protoLoader from "@grpc/proto-loader";
import type { GrpcObject, ServiceClientConstructor, ServiceDefinition } from "@grpc/grpc-js";
import { loadPackageDefinition } from "@grpc/grpc-js";
import berthV1 from "./berth-v1.json";
import runtimeV1 from "./runtime-v1.json";

/** Field names stay camelCase as in the descriptor; int64 travel as strings (nanosecond times overflow doubles); enums as names. */
export const LOADER_OPTIONS: protoLoader.Options = { longs: String, enums: String, defaults: true, oneofs: true };

export interface CriServices {
  RuntimeService: ServiceClientConstructor;
  ImageService: ServiceClientConstructor;
  Berth: ServiceClientConstructor;
}

let cached: CriServices | undefined;

export function loadServices(): CriServices {
  if (cached) return cached;
  const merged = { nested: { ...runtimeV1.nested, ...berthV1.nested } } as unknown as Parameters<typeof protoLoader.fromJSON>[0];
  const def = protoLoader.fromJSON(merged, LOADER_OPTIONS);
  const root = loadPackageDefinition(def) as GrpcObject;
  const runtime = (root.runtime as GrpcObject).v1 as GrpcObject;
  const berth = (root.berth as GrpcObject).v1 as GrpcObject;
  cached = {
    RuntimeService: runtime.RuntimeService as ServiceClientConstructor,
    ImageService: runtime.ImageService as ServiceClientConstructor,
    Berth: berth.Berth as ServiceClientConstructor,
  };
  return cached;
}

export function methodNames(service: ServiceClientConstructor): string[] {
  return Object.keys(service.service as ServiceDefinition);
}
