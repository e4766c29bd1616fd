import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, codeOf, NotFoundError } from "../../runtime/errors";

test("a typed error keeps its gRPC code and a full disk maps to RESOURCE_EXHAUSTED", () => {
  assert.equal(codeOf(new NotFoundError("image x not found")), Code.NOT_FOUND);
  const enospc = Object.assign(new Error("write failed"), { code: "ENOSPC" });
  assert.equal(codeOf(enospc), Code.RESOURCE_EXHAUSTED);
  assert.equal(codeOf(new Error("other")), Code.UNKNOWN);
});
