// Bundles berth into dist/ with esbuild. Entry points stay small and load the rest lazily
// (dynamic import → split chunks), so `berth runtime` never pays for the daemon's modules.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist");
// Modules generated here and bundled under "berth:NAME" (declared in runtime/oci/generated.d.ts).
// The OCI config.json validator: ajv's standalone code for the runtime-spec schemas, so that
// `berth runtime create` does not compile them (~100 ms) on every container.
const generated = { "oci-config-validator": await ociConfigValidatorSource() };

/** Runs runtime/oci/validate-compile.ts, bundled to a temp module where it resolves node_modules. */
async function ociConfigValidatorSource() {
  const tmp = join(root, "node_modules", ".cache", "berth-build");
  const file = join(tmp, "validate-compile.mjs");
  await build({ absWorkingDir: root, entryPoints: ["runtime/oci/validate-compile.ts"], outfile: file, bundle: true, format: "esm", platform: "node", target: "node20", packages: "external", logLevel: "warning" });
  try {
    const { configValidatorSource } = await import(pathToFileURL(file).href);
    return configValidatorSource();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const generatedModules = {
  name: "berth-generated",
  setup(b) {
    b.onResolve({ filter: /^berth:/ }, (args) => ({ path: args.path.slice("berth:".length), namespace: "berth-generated" }));
    b.onLoad({ filter: /.*/, namespace: "berth-generated" }, (args) => {
      if (!(args.path in generated)) return { errors: [{ text: `no generated module berth:${args.path}` }] };
      return { contents: generated[args.path], loader: "js", resolveDir: root };
    });
  },
};

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
  plugins: [generatedModules],
  logLevel: "warning",
});
// The init stage that create and exec start for every container (cli/runtime/init-stage.ts): one
// CommonJS file, which Node 20 loads without its ES module loader, holding only what the stage needs.
await build({
  absWorkingDir: root,
  entryPoints: { "berth-init": "cli/runtime/init-stage.ts" },
  outdir: out,
  outExtension: { ".js": ".cjs" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  external: ["koffi"],
  logLevel: "warning",
});
// Data files read at run time.
cpSync(join(root, "cri/proto"), join(out, "proto"), { recursive: true });
cpSync(join(root, "schemas"), join(out, "schemas"), { recursive: true });
