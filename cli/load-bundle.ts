// Loads one of the build's CommonJS bundles with the V8 code cache the build made for it (FILE.cache):
// compiling dist/berth-runtime.cjs takes ~5.5 ms, against ~0.4 ms from its cache, and every
// `berth runtime` call pays it (Node 20 has no compile cache of its own; module.enableCompileCache
// came in Node 22). V8 refuses a cache made by another V8 version or with other V8 flags, and the
// file compiles as usual; it checks the source only by its length, so the build writes the two
// files together (bin/build.mjs, with makeCodeCache below).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

export function compileBundle(file: string, cachedData?: Buffer): Script {
  const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, "utf8")}\n})`;
  // No import() can run in such a script (it has no dynamic import callback, and one does not
  // survive the code cache): the build refuses a bundle that keeps one.
  return new Script(source, { filename: file, cachedData });
}

/** Runs a compiled bundle as Node runs a CommonJS module; its exports. */
function runBundle(script: Script, file: string): unknown {
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {} as unknown };
  fn.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}

export function loadBundle(file: string): unknown {
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(`${file}.cache`);
  } catch {}
  return runBundle(compileBundle(file, cachedData), file);
}

/**
 * The code cache for `file`, as loadBundle reads it (FILE.cache). V8 compiles a function on its
 * first call, and a cache made before anything ran holds only the top level: given `exercise`,
 * the bundle is run and exercised first, and the cache holds every function that ran, compiled.
 */
export async function makeCodeCache(file: string, exercise?: (exports: unknown) => void | Promise<void>): Promise<Buffer> {
  const script = compileBundle(file);
  if (exercise) await exercise(runBundle(script, file));
  return script.createCachedData();
}
