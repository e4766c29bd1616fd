// Reads the manifests folder into a ManifestSet: every *.yaml/*.yml under it, parsed and validated,
// with duplicates settled. The folder is usually a symlink that git-sync swaps to a new worktree;
// it is resolved once and only the resolved tree is read, so one read never mixes two commits.
import { constants } from "node:fs";
import { open, readdir, realpath, stat } from "node:fs/promises";
import { join, sep } from "node:path";
import { InvalidArgumentError, NotFoundError } from "../../runtime/errors";
import { type Diagnostic, keyString, type ManifestObject, type ManifestSet, type SourcePosition } from "../types";
import { parseYamlDocuments } from "./positions";
import { validateDocument } from "./validate";

/** Larger files are refused: manifests are small, and the whole file is held in memory to parse. */
export const MAX_MANIFEST_FILE_BYTES = 4 * 1024 * 1024;

// If the link moves while the tree is read (a sync landed), the read is redone on the new tree a
// few times; after that the last read, consistent within itself, is returned.
const MAX_READS = 3;

export async function loadManifests(root: string): Promise<ManifestSet> {
  let resolvedRoot = await resolveRoot(root);
  for (let attempt = 1; ; attempt++) {
    let set: ManifestSet | undefined;
    let failure: unknown;
    try {
      set = await readTree(root, resolvedRoot);
    } catch (err) {
      failure = err;
    }
    const now = await realpath(root).catch(() => resolvedRoot);
    if (now !== resolvedRoot && attempt < MAX_READS) {
      resolvedRoot = now;
      continue;
    }
    if (set) return set;
    throw new InvalidArgumentError(`cannot read manifests folder ${root}: ${(failure as Error).message}`, { cause: failure });
  }
}

async function resolveRoot(root: string): Promise<string> {
  let resolved: string;
  try {
    resolved = await realpath(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`manifests folder ${root} does not exist`, { cause: err });
    throw new InvalidArgumentError(`cannot resolve manifests folder ${root}: ${(err as Error).message}`, { cause: err });
  }
  if (!(await stat(resolved)).isDirectory()) throw new InvalidArgumentError(`manifests folder ${root} is not a directory (it resolves to ${resolved})`);
  return resolved;
}

/** The git-sync commit a worktree path names: `…/.worktrees/<hash>`, or a folder inside one. */
export function revisionOf(resolvedRoot: string): string | undefined {
  return /.*\/\.worktrees\/([0-9a-f]{7,64})(?:\/|$)/i.exec(resolvedRoot)?.[1];
}

interface FileResult {
  file: string;
  mtimeMs: number;
  objects: ManifestObject[];
  diagnostics: Diagnostic[];
}

async function readTree(root: string, resolvedRoot: string): Promise<ManifestSet> {
  const files = await listManifestFiles(resolvedRoot);
  const results: FileResult[] = [];
  for (const f of files) results.push(await loadFile(resolvedRoot, f));
  const broken = results.filter((r) => r.diagnostics.length > 0);
  // A file with any error contributes nothing: applying half a file could start a Deployment
  // without the ConfigMap declared next to it.
  const { objects, diagnostics: duplicates } = settleDuplicates(results.filter((r) => r.diagnostics.length === 0));
  const diagnostics = [...broken.flatMap((r) => r.diagnostics), ...duplicates].sort(byPosition);
  return { root, resolvedRoot, revision: revisionOf(resolvedRoot), objects, diagnostics, brokenFiles: broken.map((r) => r.file) };
}

interface Candidate {
  /** Relative path, "/"-separated. */
  file: string;
  /** Not followed unless it stays inside the tree. */
  symlink: boolean;
}

/** Every manifest file under the tree, sorted by relative path; symlinked directories are not entered. */
async function listManifestFiles(resolvedRoot: string): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const walk = async (rel: string) => {
    for (const entry of await readdir(join(resolvedRoot, rel), { withFileTypes: true })) {
      if (ignored(entry.name)) continue;
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(path);
      else if (/\.ya?ml$/.test(entry.name) && (entry.isFile() || entry.isSymbolicLink())) out.push({ file: path, symlink: entry.isSymbolicLink() });
    }
  };
  await walk("");
  return out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** Dot-files and -directories (.git, git-sync's .worktrees, emacs' .#lock) and editor leftovers. */
function ignored(name: string): boolean {
  return name.startsWith(".") || name.endsWith("~") || name.endsWith(".swp") || name.endsWith(".swx") || (name.length > 1 && name.startsWith("#") && name.endsWith("#"));
}

async function loadFile(resolvedRoot: string, c: Candidate): Promise<FileResult> {
  const at: SourcePosition = { file: c.file, line: 1, column: 1 };
  const fail = (message: string, mtimeMs = 0): FileResult => ({ file: c.file, mtimeMs, objects: [], diagnostics: [{ ...at, field: "", message }] });
  let path = join(resolvedRoot, c.file);
  if (c.symlink) {
    // A link may stay inside the tree; one leading out would let the folder read any host file.
    const target = await realpath(path).catch((err: Error) => err);
    if (target instanceof Error) return fail(`cannot read: ${target.message}`);
    if (!target.startsWith(resolvedRoot + sep)) return fail(`is a symbolic link to ${target}, outside the manifests folder; berth does not follow it`);
    path = target;
  }
  let bytes: Buffer;
  let mtimeMs: number;
  try {
    // O_NONBLOCK: a FIFO named *.yaml must not hang the read.
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      mtimeMs = st.mtimeMs;
      if (!st.isFile()) return fail("is not a regular file", mtimeMs);
      if (st.size > MAX_MANIFEST_FILE_BYTES) return fail(`is ${st.size} bytes; berth reads manifest files of at most ${MAX_MANIFEST_FILE_BYTES} bytes`, mtimeMs);
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    return fail(`cannot read: ${(err as Error).message}`);
  }
  if (bytes.length > MAX_MANIFEST_FILE_BYTES) return fail(`grew past ${MAX_MANIFEST_FILE_BYTES} bytes while read; berth reads manifest files of at most that`, mtimeMs);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("is not UTF-8 text", mtimeMs);
  }
  const parsed = parseYamlDocuments(text, c.file);
  if (parsed.error) return { file: c.file, mtimeMs, objects: [], diagnostics: [parsed.error] };
  const objects: ManifestObject[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const doc of parsed.documents) {
    const r = validateDocument(doc);
    if (r.object) objects.push(r.object);
    diagnostics.push(...r.diagnostics);
  }
  return { file: c.file, mtimeMs, objects, diagnostics };
}

interface Declared {
  object: ManifestObject;
  mtimeMs: number;
}

/**
 * Of objects declared more than once (same kind/namespace/name), the one from the file modified
 * longest ago is kept: it is most likely the one already running, and the newer copy the mistake.
 * Ties go to the first path, then the first in the file. Both places get a diagnostic; neither file
 * counts as broken, since the kept object is fine and the dropped one cannot be applied anyway.
 */
function settleDuplicates(files: FileResult[]): { objects: ManifestObject[]; diagnostics: Diagnostic[] } {
  const byKey = new Map<string, Declared[]>();
  for (const f of files) {
    for (const object of f.objects) {
      const k = keyString(object.key);
      const list = byKey.get(k);
      if (list) list.push({ object, mtimeMs: f.mtimeMs });
      else byKey.set(k, [{ object, mtimeMs: f.mtimeMs }]);
    }
  }
  const dropped = new Set<ManifestObject>();
  const diagnostics: Diagnostic[] = [];
  for (const [k, list] of byKey) {
    if (list.length < 2) continue;
    // Files come in path order and objects in file order, so the first of the oldest wins ties.
    const kept = list.reduce((best, d) => (d.mtimeMs < best.mtimeMs ? d : best));
    const others = list.filter((d) => d !== kept);
    const older = others.every((d) => d.mtimeMs > kept.mtimeMs);
    const keeping = `keeping the ${older ? "older" : "first"} one at ${where(kept.object.source)}`;
    const diagnostic = (object: ManifestObject, elsewhere: Declared[]): Diagnostic => ({
      ...object.source,
      field: "metadata.name",
      message: `${k} is also declared at ${elsewhere.map((d) => where(d.object.source)).join(", ")}; ${keeping}`,
      object: object.key,
    });
    diagnostics.push(diagnostic(kept.object, others));
    for (const d of others) {
      dropped.add(d.object);
      diagnostics.push(diagnostic(d.object, [kept]));
    }
  }
  const objects = files.flatMap((f) => f.objects).filter((o) => !dropped.has(o));
  return { objects, diagnostics };
}

function where(p: SourcePosition): string {
  return `${p.file}:${p.line}:${p.column}`;
}

function byPosition(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column;
}
