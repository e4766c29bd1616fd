// Snapshots as containerd models them: a committed snapshot is an immutable layer stack keyed
// by name (berth uses the chain ID); an active snapshot is a writable layer on a parent; a
// view is a read-only active. Implementations: overlay.ts. Conformance suite: test/unit/snapshot-conformance.ts.

export type SnapshotKind = "committed" | "active" | "view";

/**
 * Label of an active snapshot that only exists while a layer is unpacked into it (its value is
 * the chain ID being unpacked). One left by a previous process is half-made, and a
 * snapshotter's cleanup() removes it.
 */
export const UNPACKING_LABEL = "berth.io/unpacking";

export interface SnapshotInfo {
  key: string;
  kind: SnapshotKind;
  parent?: string;
  labels: Record<string, string>;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** A mount as mount(2) takes it; `type: "bind"` with options ["rbind","ro"] for single-layer views. */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface Usage {
  bytes: number;
  inodes: number;
}

export interface Snapshotter {
  stat(key: string): Promise<SnapshotInfo | undefined>;
  /** New writable snapshot on `parent` (a committed key). ALREADY_EXISTS if the key is taken. */
  prepare(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  /** New read-only snapshot on `parent`. */
  view(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  /** Freeze active snapshot `key` as committed snapshot `name`. */
  commit(name: string, key: string, labels?: Record<string, string>): Promise<void>;
  /** FAILED_PRECONDITION while other snapshots still have it as parent. */
  remove(key: string): Promise<void>;
  list(): Promise<SnapshotInfo[]>;
  usage(key: string): Promise<Usage>;
  /**
   * Directory holding the writable layer of an active snapshot, where an applier writes a
   * layer's files directly (overlay whiteouts included) without mounting.
   */
  upperDir(key: string): Promise<string>;
  /** Directories of the committed chain below `key`, topmost first (for resolving paths during unpack). */
  lowerDirs(key: string): Promise<string[]>;
  /** Remove active snapshots a crash left half-made (no commit), returning their keys. */
  cleanup(): Promise<string[]>;
}
