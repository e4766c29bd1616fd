// CRI v1 messages as berth's handlers see them after proto-loader decoding: the generated types
// of runtime/api/cri-v1.ts, under the names the image handlers use.
export type { AuthConfig, FilesystemUsage, Image, ImageSpec, Int64Value, RuntimeCondition } from "../runtime/api/cri-v1";

/** A decoded request: proto-loader fills defaults, but a hand-made client may omit sub-messages. */
export type Request<T> = { [K in keyof T]?: T[K] | null };
