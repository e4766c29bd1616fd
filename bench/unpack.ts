// Unpack benchmark: applyLayer against GNU tar on the same layer, gzip and plain. Not part of
// the suite. Run as root (owners are applied) from the repository:
//   node --import tsx bench/unpack.ts [--runs N] [--baseline path/to/old/unpack.ts]
// --baseline also times the applyLayer of another copy of the module (an older version, say),
// taking turns with the current one, for before/after figures from one run. The copy must be
// able to resolve its own imports from where it lies.
//
// The layer is one 40 MiB random file and 2000 random files of 1–8 KiB in 20 directories, as
// GNU tar packs them. applyLayer reads it from a content store, as pull does. Every timed run
// extracts into a fresh directory, and the extractors take turns going first. Writeback of the
// previous run is flushed (sync) before the clock starts so a run does not pay for the one
// before it. Throughput is of the uncompressed tar; sha256sum and gzip -dc of the blob bound
// what reading, hashing and inflating cost alone.
//
// Absolute figures swing with the file system's recent past; compare rows of one run. On ext4
// without a journal (this VM's root) the inode allocator passes over inodes freed in the last
// minute or so (recently_deleted), and creating 2000 files right after deleting as many took
// over a second, for tar and berth alike. So nothing is deleted until the end, and a run right
// after another (whose cleanup deleted ~20000 files) measures everything slower.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { FileContentStore } from "../runtime/image/content/store";
import { MediaType } from "../runtime/image/types";
import type { applyLayer as ApplyLayer } from "../runtime/image/unpack";

const MIB = 1024 * 1024;
const BIG_MIB = 40;
const SMALL_FILES = 2000;
const SMALL_DIRS = 20;

// ---- everything created here, removed on exit, error or Ctrl-C ----

let work: string | undefined;
const children = new Set<ChildProcess>();

function cleanup(): void {
  // A tar still extracting would write into what is being removed.
  for (const c of children) c.kill("SIGKILL");
  if (!work) return;
  try {
    rmSync(work, { recursive: true, force: true });
  } catch (err) {
    process.stderr.write(`bench: could not remove ${work}: ${(err as Error).message}\n`);
  }
  work = undefined;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    process.stderr.write(`\n${sig}: cleaning up\n`);
    cleanup();
    process.exit(130);
  });
}

// ---- helpers ----

/** Runs a command to completion, its output dropped (stderr kept for the error). */
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    children.add(child);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-4096);
    });
    child.once("error", (e) => {
      children.delete(child);
      reject(e);
    });
    child.once("exit", (code, signal) => {
      children.delete(child);
      if (code === 0) resolveRun();
      else reject(new Error(`${cmd} ${args.join(" ")}: exit ${code ?? signal}: ${err.trim()}`));
    });
  });
}

/** `sh -c` for the commands that redirect. */
function sh(script: string): Promise<void> {
  return run("sh", ["-c", script]);
}

function parseArgs(argv: string[]): { runs: number; baseline?: string } {
  let runs = 5;
  let baseline: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runs") {
      runs = Number(argv[++i]);
      if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs needs a positive integer, got ${argv[i]}`);
    } else if (argv[i] === "--baseline") {
      baseline = argv[++i];
      if (!baseline) throw new Error("--baseline needs a path");
    } else throw new Error(`unknown argument ${argv[i]}; usage: bench/unpack.ts [--runs N] [--baseline path/to/unpack.ts]`);
  }
  return { runs, baseline };
}

// ---- the layer ----

async function buildSource(dir: string): Promise<void> {
  await writeFile(join(dir, "big.bin"), randomBytes(BIG_MIB * MIB));
  for (let d = 0; d < SMALL_DIRS; d++) await mkdir(join(dir, "small", `d${d}`), { recursive: true });
  for (let i = 0; i < SMALL_FILES; i++) {
    const size = 1024 + Math.floor(Math.random() * 7 * 1024);
    await writeFile(join(dir, "small", `d${i % SMALL_DIRS}`, `f${i}`), randomBytes(size));
  }
}

// ---- measurements ----

interface Row {
  layer: string;
  what: string;
  seconds: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Seconds `body` takes, after writeback of whatever came before. */
async function once(body: () => Promise<void>): Promise<number> {
  await run("sync", []);
  const t0 = performance.now();
  await body();
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const { runs, baseline: baselinePath } = parseArgs(process.argv.slice(2));
  // Imported here rather than at the top so a baseline copy of the module loads the same way.
  const { applyLayer } = (await import("../runtime/image/unpack")) as { applyLayer: typeof ApplyLayer };
  const baseline = baselinePath ? ((await import(pathToFileURL(resolve(baselinePath)).href)) as { applyLayer: typeof ApplyLayer }).applyLayer : undefined;

  work = await mkdtemp(join(tmpdir(), "berth-bench-unpack-"));
  const src = join(work, "src");
  await mkdir(src);
  let t0 = performance.now();
  await buildSource(src);
  const tarPath = join(work, "layer.tar");
  const gzPath = join(work, "layer.tar.gz");
  // Sorted, numeric owners: the archive a reproducible image build makes.
  await run("tar", ["--sort=name", "--numeric-owner", "-cf", tarPath, "-C", src, "."]);
  await sh(`gzip -n -6 -c '${tarPath}' > '${gzPath}'`);
  const tarBytes = (await stat(tarPath)).size;
  const gzBytes = (await stat(gzPath)).size;

  const content = new FileContentStore(join(work, "root"));
  const tarDigest = (await content.put(await readFile(tarPath))).digest;
  const gzDigest = (await content.put(await readFile(gzPath))).digest;
  console.log(
    `layer: ${BIG_MIB} MiB random file + ${SMALL_FILES} files of 1–8 KiB; tar ${(tarBytes / MIB).toFixed(1)} MiB, gzip ${(gzBytes / MIB).toFixed(1)} MiB; built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  console.log(`median of ${runs} runs each${baselinePath ? `; baseline applyLayer from ${baselinePath}` : ""}\n`);

  const variants = [
    { layer: "gzip", digest: gzDigest, path: gzPath, mediaType: MediaType.OCILayerGzip, tarFlags: "-xzf" },
    { layer: "tar", digest: tarDigest, path: tarPath, mediaType: MediaType.OCILayer, tarFlags: "-xf" },
  ];
  let n = 0;
  const fresh = async () => {
    const out = join(work!, "out", String(++n));
    await mkdir(out, { recursive: true });
    return out;
  };
  const unpackers = [{ what: "berth applyLayer", applyLayer }, ...(baseline ? [{ what: "baseline applyLayer", applyLayer: baseline }] : [])];
  // One untimed unpack each first: module loading and JIT warm-up are not what is measured.
  for (const u of unpackers) await u.applyLayer({ stream: content.readStream(gzDigest), mediaType: MediaType.OCILayerGzip, dir: await fresh(), lowerDirs: [] });

  const rows: Row[] = [];
  t0 = performance.now();
  for (const v of variants) {
    const extractors = [
      ...unpackers.map((u) => ({
        what: u.what,
        go: async (dir: string) => {
          const res = await u.applyLayer({ stream: content.readStream(v.digest), mediaType: v.mediaType, dir, lowerDirs: [] });
          // The plain blob's digest is the layer's diffID.
          if (res.diffId !== tarDigest) throw new Error(`${u.what} computed diffID ${res.diffId}, the tar is ${tarDigest}`);
        },
      })),
      { what: `GNU tar ${v.tarFlags}`, go: (dir: string) => run("tar", [v.tarFlags, v.path, "-C", dir]) },
    ];
    const times = extractors.map(() => [] as number[]);
    for (let i = 0; i < runs; i++) {
      // Each run a different one goes first.
      for (let k = 0; k < extractors.length; k++) {
        const j = (i + k) % extractors.length;
        const dir = await fresh();
        times[j]!.push(await once(() => extractors[j]!.go(dir)));
      }
    }
    for (const [j, e] of extractors.entries()) rows.push({ layer: v.layer, what: e.what, seconds: median(times[j]!) });
    const alone = [{ what: "sha256sum", cmd: `sha256sum '${v.path}' > /dev/null` }, ...(v.layer === "gzip" ? [{ what: "gzip -dc >/dev/null", cmd: `gzip -dc '${v.path}' > /dev/null` }] : [])];
    for (const a of alone) {
      const ts: number[] = [];
      for (let i = 0; i < runs; i++) ts.push(await once(() => sh(a.cmd)));
      rows.push({ layer: v.layer, what: a.what, seconds: median(ts) });
    }
  }

  const table = [["layer", "what", "median ms", "MiB/s (of tar)", "× GNU tar time"]];
  for (const r of rows) {
    const tarRow = rows.find((x) => x.layer === r.layer && x.what.startsWith("GNU tar"))!;
    table.push([r.layer, r.what, (r.seconds * 1000).toFixed(0), (tarBytes / MIB / r.seconds).toFixed(0), (r.seconds / tarRow.seconds).toFixed(2)]);
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  for (const row of table) console.log(row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
  console.log(`\nmeasured in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

try {
  await main();
} catch (err) {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
