// The host side of a pod's volumes, made before its sandbox: emptyDir directories, ConfigMap
// files (written whole; a changed ConfigMap is a new pod, so files are never rewritten under a
// running container), hostPath checks by type as kubelet makes them.
import { mkdir, open, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { FailedPreconditionError } from "../runtime/errors";
import type { VolumeSource } from "./types";

export async function prepareVolumes(volumes: VolumeSource[]): Promise<void> {
  for (const v of volumes) {
    if (v.kind === "emptyDir") await mkdir(v.hostPath, { recursive: true, mode: 0o777 });
    else if (v.kind === "configMap") {
      await mkdir(v.hostPath, { recursive: true, mode: 0o755 });
      for (const [path, f] of Object.entries(v.files)) {
        const file = join(v.hostPath, path);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, f.data, { mode: f.mode });
      }
    } else await checkHostPath(v);
  }
}

async function checkHostPath(v: Extract<VolumeSource, { kind: "hostPath" }>): Promise<void> {
  const st = await stat(v.hostPath).catch(() => undefined);
  const fail = (why: string) => {
    throw new FailedPreconditionError(`volume "${v.name}": hostPath ${v.hostPath} ${why} (type ${v.type})`);
  };
  switch (v.type) {
    case "DirectoryOrCreate":
      if (!st) await mkdir(v.hostPath, { recursive: true, mode: 0o755 });
      else if (!st.isDirectory()) fail("is not a directory");
      break;
    case "Directory":
      if (!st?.isDirectory()) fail(st ? "is not a directory" : "does not exist");
      break;
    case "FileOrCreate":
      if (!st) {
        await mkdir(dirname(v.hostPath), { recursive: true });
        await (await open(v.hostPath, "a", 0o644)).close();
      } else if (!st.isFile()) fail("is not a file");
      break;
    case "File":
      if (!st?.isFile()) fail(st ? "is not a file" : "does not exist");
      break;
    case "Socket":
      if (!st?.isSocket()) fail(st ? "is not a socket" : "does not exist");
      break;
    case "CharDevice":
      if (!st?.isCharacterDevice()) fail(st ? "is not a character device" : "does not exist");
      break;
    case "BlockDevice":
      if (!st?.isBlockDevice()) fail(st ? "is not a block device" : "does not exist");
      break;
    default:
      // "" (unset): no check, the runtime's bind mount says if the source is missing.
      break;
  }
}

/** Removes the pod's own directories (volumes, logs); host paths are the host's and stay. */
export async function removePodDirs(dirs: string[]): Promise<void> {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
