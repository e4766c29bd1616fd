// Compiled seccomp filters kept on disk, by profile. Compiling Docker's profile takes ~12 ms of
// cold JavaScript in the launcher of every create and exec, and every CRI container has the same
// RuntimeDefault profile: measured on a CRI-like bundle, that CPU time delayed the init by ~17 ms
// (it slows the kernel's cgroup move the init then waits on). A hit is one small file read.
//
// An entry holds the profile it was compiled from, with the compiler's identity and the
// architecture, and is used only when all three are exactly this create's: the file name is a
// plain hash of them (no node:crypto to load: ~2.5 ms), a collision is only a miss. The build
// makes the compiler's identity from its sources (bin/build.mjs), so a changed compiler never
// reads an old entry; without a build (tsx) there is no identity and no cache. An entry that is
// not a well-formed program is ignored and replaced; a cache that cannot be written (read-only
// root, full disk) only costs the compile.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "../store/atomic";

export interface CompiledFilter {
  program: Buffer;
  flags: number;
}

/** Below the runtime's --root; "@" is not allowed in a container id, so no container can own it. */
export const SECCOMP_CACHE_DIR = "@seccomp";

/** Most instructions a filter may have (BPF_MAXINSNS), 8 bytes each. */
const MAX_PROGRAM_BYTES = 4096 * 8;

declare const __BERTH_SECCOMP_COMPILER__: string | undefined;
/** The build's identity of the seccomp compiler, when there is a build. */
export const BUILT_COMPILER_ID = typeof __BERTH_SECCOMP_COMPILER__ === "string" ? __BERTH_SECCOMP_COMPILER__ : undefined;

interface Entry {
  compiler: string;
  arch: string;
  profile: string;
  flags: number;
  program: string;
}

export async function cachedFilter(dir: string, compilerId: string | undefined, profile: unknown, compile: () => Promise<CompiledFilter>): Promise<CompiledFilter> {
  if (!compilerId) return compile();
  const wanted = { compiler: compilerId, arch: process.arch, profile: JSON.stringify(profile) };
  const file = join(dir, `${fnv1a(`${wanted.compiler}\n${wanted.arch}\n${wanted.profile}`)}.json`);
  const hit = readEntry(file, wanted);
  if (hit) return hit;
  const compiled = await compile();
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const entry: Entry = { ...wanted, flags: compiled.flags, program: compiled.program.toString("base64") };
    writeFileAtomicSync(file, JSON.stringify(entry), 0o600);
  } catch {}
  return compiled;
}

function readEntry(file: string, wanted: Pick<Entry, "compiler" | "arch" | "profile">): CompiledFilter | undefined {
  try {
    const e = JSON.parse(readFileSync(file, "utf8")) as Partial<Entry>;
    if (e.compiler !== wanted.compiler || e.arch !== wanted.arch || e.profile !== wanted.profile) return undefined;
    if (typeof e.flags !== "number" || !Number.isInteger(e.flags) || e.flags < 0 || typeof e.program !== "string") return undefined;
    const program = Buffer.from(e.program, "base64");
    if (program.length === 0 || program.length % 8 !== 0 || program.length > MAX_PROGRAM_BYTES) return undefined;
    return { program, flags: e.flags };
  } catch {
    return undefined;
  }
}

/** Two 32-bit FNV-1a hashes of the UTF-16 units, with different offsets: a 16-hex-digit name. */
function fnv1a(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}
