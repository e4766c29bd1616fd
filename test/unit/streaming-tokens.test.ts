// The streaming server's pure parts: single-use, expiring, bounded tokens; protocol choice; the
// Status a v4 client decodes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { statusJson } from "../../cri/streaming/remotecommand";
import { EXEC_SPDY_PROTOCOLS, negotiate } from "../../cri/streaming/spdy-transport";
import { TokenCache } from "../../cri/streaming/tokens";
import { Code } from "../../runtime/errors";

test("a token is about 8 URL-safe characters, works once, expires after its minute, and at most 1000 are outstanding", () => {
  let now = 0;
  const c = new TokenCache<string>(60_000, 1000, () => now);
  const t = c.insert("req");
  assert.match(t, /^[A-Za-z0-9_-]{8}$/);
  assert.equal(c.consume(t), "req");
  assert.equal(c.consume(t), undefined, "single use");
  const late = c.insert("late");
  now += 60_001;
  assert.equal(c.consume(late), undefined, "expired");
  for (let i = 0; i < 1000; i++) c.insert(String(i));
  assert.throws(() => c.insert("one too many"), (e: { code: number }) => e.code === Code.RESOURCE_EXHAUSTED);
  now += 60_001;
  assert.doesNotThrow(() => c.insert("after expiry"), "expired tokens make room");
});

test("the server takes the first of the client's protocols it speaks", () => {
  assert.equal(negotiate(["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"], EXEC_SPDY_PROTOCOLS), "v4.channel.k8s.io");
  assert.equal(negotiate(["channel.k8s.io"], EXEC_SPDY_PROTOCOLS), "channel.k8s.io");
  assert.equal(negotiate(["v9.example"], EXEC_SPDY_PROTOCOLS), undefined);
});

test("the status written on the error stream is what kubectl decodes", () => {
  assert.deepEqual(JSON.parse(statusJson({ ok: true })), { metadata: {}, status: "Success" });
  const f = JSON.parse(statusJson({ ok: false, exitCode: 3, message: "command terminated with non-zero exit code" }));
  assert.equal(f.status, "Failure");
  assert.equal(f.reason, "NonZeroExitCode");
  assert.deepEqual(f.details.causes, [{ reason: "ExitCode", message: "3" }]);
});
