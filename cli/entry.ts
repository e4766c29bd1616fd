// Entry of dist/berth.js as bin/build.mjs bundles it: CommonJS, so that `berth runtime` — which
// conmon runs for every container, and whose Node boot is on the path of every container start —
// never starts Node's ES module loader (~5 ms) and loads its code from one file with a V8 code
// cache (load-bundle.ts): berth-runtime.cjs, or for the init stage that create and exec start,
// `berth runtime init`, berth-init.cjs (cli/runtime/init-stage.ts, only what the stage needs).
// Every other command goes on in the ES module build of cli/main.ts (berth-main.mjs, split into
// lazily loaded chunks). Under tsx, cli/main.ts is the entry and runs `runtime` itself.
import { join } from "node:path";
import { loadBundle } from "./load-bundle";

const argv = process.argv.slice(2);
if (argv[0] === "runtime" && argv[1] === "init") {
  // It runs on load, and ends in execve or exit.
  loadBundle(join(__dirname, "berth-init.cjs"));
} else if (argv[0] === "runtime") {
  const { run } = loadBundle(join(__dirname, "berth-runtime.cjs")) as typeof import("./runtime/index");
  run(argv.slice(1)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
} else {
  // Not a literal: the build leaves it for Node to resolve beside this file.
  const main = "./berth-main.mjs";
  import(main);
}
