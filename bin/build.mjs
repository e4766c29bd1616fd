// Bundles berth into dist/ with esbuild. Entry points stay small and load the rest lazily
// (dynamic import → split chunks), so `berth runtime` never pays for the daemon's modules.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: { berth: "cli/main.ts" },
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  // koffi loads a prebuilt .node file from its own package directory.
  external: ["koffi"],
  // Bundled CommonJS dependencies call require() for node builtins.
  banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
  logLevel: "warning",
});
// Data files read at run time.
cpSync(join(root, "cri/proto"), join(out, "proto"), { recursive: true });
cpSync(join(root, "schemas"), join(out, "schemas"), { recursive: true });
