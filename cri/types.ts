// CRI v1 messages as berth's handlers see them after proto-loader decoding (camelCase fields,
// int64 as decimal strings, enums as names). Only the messages berth handles are spelled out.

export interface ImageSpec {
  image: string;
  annotations: Record<string, string>;
  userSpecifiedImage: string;
  runtimeHandler: string;
  imageRef: string;
}

export interface AuthConfig {
  username: string;
  password: string;
  auth: string;
  serverAddress: string;
  identityToken: string;
  registryToken: string;
}

export interface Int64Value {
  value: string;
}

export interface Image {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: string;
  uid: Int64Value | null;
  username: string;
  spec: Partial<ImageSpec> | null;
  pinned: boolean;
}

export interface FilesystemUsage {
  timestamp: string;
  fsId: { mountpoint: string };
  usedBytes: { value: string };
  inodesUsed: { value: string };
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** A decoded request: proto-loader fills defaults, but a hand-made client may omit sub-messages. */
export type Request<T> = { [K in keyof T]?: T[K] | null };
