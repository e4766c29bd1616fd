import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { compileBundle } from "../../cli/load-bundle";
import { BERTH_JS } from "../support/daemon";

// A cache V8 refuses costs nothing but time: the bundle compiles as usual. This is what notices.
test("the build's V8 code caches are accepted by this node for every bundle berth runtime loads", () => {
  for (const name of ["berth-runtime.cjs", "berth-init.cjs", "oci-config-validator.cjs"]) {
    const file = join(BERTH_JS, "..", name);
    const script = compileBundle(file, readFileSync(`${file}.cache`));
    assert.equal(script.cachedDataRejected, false, `${name}.cache`);
  }
});
