// Watches a manifests folder for edits, and the folder's own name for a git-sync swap (a new
// symlink renamed over the old one): chokidar on the tree the link points at, fs.watch on the
// link's parent directory. Events are debounced into one reload; a swap re-targets the tree
// watcher and is reported as one change.
import { type FSWatcher, watch as fsWatch } from "node:fs";
import { realpath } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import chokidar from "chokidar";

export interface FolderWatch {
  close(): Promise<void>;
}

const DEBOUNCE_MS = 30;

export async function watchFolder(root: string, onChange: (reason: string) => void, onError: (err: Error) => void): Promise<FolderWatch> {
  const abs = resolve(root);
  let target = await realpath(abs);
  let tree = watchTree(target);
  let timer: NodeJS.Timeout | undefined;
  let reasons = new Set<string>();
  const fire = (reason: string) => {
    reasons.add(reason);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      const r = [...reasons].join(", ");
      reasons = new Set();
      onChange(r);
    }, DEBOUNCE_MS);
  };

  function watchTree(dir: string) {
    const w = chokidar.watch(dir, {
      ignoreInitial: true,
      followSymlinks: false,
      // Dot-directories hold git's and git-sync's own files; their churn is not an edit.
      ignored: (p: string) => p !== dir && basename(p).startsWith("."),
    });
    w.on("all", (event, path) => fire(`${event} ${path}`));
    w.on("error", (e) => onError(e as Error));
    return w;
  }

  const retarget = async () => {
    const now = await realpath(abs).catch(() => undefined);
    if (!now || now === target) return;
    target = now;
    const old = tree;
    tree = watchTree(now);
    await old.close();
    fire(`folder now points at ${now}`);
  };
  // Watched whether or not the folder is a link today: a directory can be renamed over too.
  const parent: FSWatcher = fsWatch(dirname(abs), { persistent: false }, (_event, name) => {
    if (name === null || name === basename(abs)) void retarget().catch((e: Error) => onError(e));
  });
  parent.on("error", (e) => onError(e));
  return {
    close: async () => {
      if (timer) clearTimeout(timer);
      parent.close();
      await tree.close();
    },
  };
}
