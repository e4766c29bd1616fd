// Bundles berth into dist/ with esbuild. dist/berth.js is a small CommonJS dispatcher: `berth
// runtime`, whose Node boot is on the path of every container start, loads one CommonJS bundle
// with a V8 code cache (berth-runtime.cjs, or berth-init.cjs for the init stage), and no daemon
// code; every other command loads the ES module build, whose chunks load lazily (dynamic import).
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
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

// koffi's package entry finds the platform's prebuilt package, reads node's ELF header for the
// libc, checks versions and wraps deprecated calls before it loads the native module: 9 ms per
// process as CommonJS, 13 ms as an ES module, against 1.5 ms for loading that native module
// alone — and `berth runtime create` pays it twice (launcher and init stage). So the build does
// the detection once, by loading koffi here, and the bundles require the native module it chose,
// by its path relative to dist/ (falling back to the package where that path is missing).
const koffiNative = (() => {
  const req = createRequire(join(root, "package.json"));
  req("koffi");
  const file = Object.keys(req.cache).find((f) => f.endsWith(".node") && f.includes("koffi"));
  if (!file) throw new Error("build: cannot tell which native module koffi loads");
  return `./${relative(out, file)}`;
})();

const koffiDirect = {
  name: "berth-koffi",
  setup(b) {
    b.onResolve({ filter: /^koffi$/ }, (args) => (args.namespace === "berth-koffi" ? { path: "koffi", external: true } : { path: "koffi", namespace: "berth-koffi" }));
    b.onResolve({ filter: /\.node$/, namespace: "berth-koffi" }, (args) => ({ path: args.path, external: true }));
    b.onLoad({ filter: /.*/, namespace: "berth-koffi" }, () => ({
      contents: `try { module.exports = require(${JSON.stringify(koffiNative)}); } catch (err) { if (err.code !== "MODULE_NOT_FOUND") throw err; module.exports = require("koffi"); }`,
      loader: "js",
    }));
  },
};

// The bundles carry the validator precompiled: validate-compile.ts (ajv and the schemas, which
// validate.ts falls back to without a build) would only be bytes to parse in the CommonJS bundle.
const noRuntimeCompile = {
  name: "berth-no-runtime-compile",
  setup(b) {
    b.onResolve({ filter: /\/validate-compile$/ }, () => ({ path: "validate-compile", namespace: "berth-stub" }));
    b.onLoad({ filter: /.*/, namespace: "berth-stub" }, () => ({
      contents: `export function compileConfigValidator() { throw new Error("this build has no precompiled config validator"); }`,
      loader: "js",
    }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// dist/berth.js (cli/entry.ts) is a small CommonJS dispatcher. `berth runtime` is one CommonJS
// bundle, berth-runtime.cjs (cli/runtime/index.ts), loaded with a V8 code cache (cli/load-bundle.ts),
// so that conmon's calls neither start Node's ES module loader nor load chunk after chunk; every
// other command imports berth-main.mjs (cli/main.ts), the ES module build split into lazily loaded
// chunks. dist/package.json makes the .js files CommonJS; the ES modules are .mjs.
writeFileSync(join(out, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
// The seccomp compiler's identity, for the filter cache of `berth runtime` (runtime/oci/seccomp-cache.ts):
// a hash of its sources, so that a changed compiler never reads a filter an older one compiled.
const seccompCompilerId = (() => {
  const h = createHash("sha256");
  const dir = join(root, "runtime/security/seccomp");
  const files = [...readdirSync(dir).filter((f) => f.endsWith(".ts")).map((f) => join(dir, f)), join(root, "runtime/oci/seccomp-of.ts"), join(root, "runtime/oci/seccomp-cache.ts")];
  for (const f of files.sort()) h.update(`${relative(root, f)}\0`).update(readFileSync(f)).update("\0");
  return h.digest("hex").slice(0, 32);
})();
const cjs = {
  absWorkingDir: root,
  outdir: out,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  define: { __BERTH_SECCOMP_COMPILER__: JSON.stringify(seccompCompilerId) },
};
await build({ ...cjs, entryPoints: { berth: "cli/entry.ts" } });
/** A bundle that load-bundle.ts runs: no dynamic import callback there, so an import() left in it would throw. */
async function cjsBundle(name, entry, plugins) {
  const { metafile } = await build({ ...cjs, entryPoints: { [name]: entry }, outExtension: { ".js": ".cjs" }, plugins, metafile: true });
  const dynamic = Object.values(metafile.outputs).flatMap((o) => o.imports.filter((i) => i.kind === "dynamic-import").map((i) => i.path));
  if (dynamic.length) throw new Error(`build: ${name}.cjs keeps dynamic import()s of ${dynamic.join(", ")}: import them statically`);
}
// The validator is 350 KB of the runtime bundle's code: its own file (with its code cache), which
// create loads only after it has spawned the init, so reading and compiling it overlaps the init's
// boot instead of preceding it.
const validatorApart = {
  name: "berth-validator-apart",
  setup(b) {
    b.onResolve({ filter: /^berth:oci-config-validator$/ }, () => ({ path: "oci-config-validator", namespace: "berth-validator-apart" }));
    b.onLoad({ filter: /.*/, namespace: "berth-validator-apart" }, () => ({
      contents: `import { join } from "node:path"; import { loadBundle } from "./cli/load-bundle"; export default loadBundle(join(__dirname, "oci-config-validator.cjs")).default;`,
      loader: "js",
      resolveDir: root,
    }));
  },
};
await build({ ...cjs, stdin: { contents: generated["oci-config-validator"], resolveDir: root, loader: "js", sourcefile: "oci-config-validator.mjs" }, outdir: undefined, outfile: join(out, "oci-config-validator.cjs"), sourcemap: false });
await cjsBundle("berth-runtime", "cli/runtime/index.ts", [validatorApart, koffiDirect, noRuntimeCompile]);
// The init stage that create and exec start for every container (cli/runtime/init-stage.ts, run as
// `berth runtime init`): its own bundle, holding only what the stage needs.
await cjsBundle("berth-init", "cli/runtime/init-stage.ts", [koffiDirect]);
// Their V8 code caches (cli/load-bundle.ts), made with this node, each after the bundle ran
// create's side-effect-free code on sample configs (cli/runtime/warm-up.ts), so that the caches
// hold those functions compiled; the init stage's code only runs inside a container's init.
{
  const tmp = join(root, "node_modules", ".cache", "berth-build");
  await build({ absWorkingDir: root, entryPoints: { "load-bundle": "cli/load-bundle.ts", "warm-up": "cli/runtime/warm-up.ts" }, outdir: tmp, bundle: true, format: "esm", platform: "node", target: "node20", logLevel: "warning" });
  try {
    const { makeCodeCache } = await import(pathToFileURL(join(tmp, "load-bundle.js")).href);
    const { sampleConfigs } = await import(pathToFileURL(join(tmp, "warm-up.js")).href);
    const exercises = {
      "berth-runtime.cjs": (m) => m.warmCodeCache(sampleConfigs()),
      "berth-init.cjs": undefined,
      "oci-config-validator.cjs": (m) => {
        for (const config of sampleConfigs()) if (!m.default(config)) throw new Error(`build: a sample config fails the schema: ${JSON.stringify(m.default.errors)}`);
      },
    };
    for (const [name, exercise] of Object.entries(exercises)) writeFileSync(join(out, `${name}.cache`), await makeCodeCache(join(out, name), exercise));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
await build({
  absWorkingDir: root,
  entryPoints: { "berth-main": "cli/main.ts" },
  outdir: out,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  // Bundled CommonJS dependencies call require() for node builtins.
  banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
  plugins: [generatedModules, koffiDirect],
  logLevel: "warning",
});
// Data files read at run time.
cpSync(join(root, "cri/proto"), join(out, "proto"), { recursive: true });
cpSync(join(root, "schemas"), join(out, "schemas"), { recursive: true });
