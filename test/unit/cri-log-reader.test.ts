// Reading conmon's CRI log format back: full and partial lines per stream, torn lines skipped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCriLogLine, streamsOf } from "../../runtime/monitor/cri-log-reader";

test("full lines get their newline back, partial lines are joined, each stream keeps its own bytes", () => {
  const text = [
    "2026-11-24T00:00:00.000000001Z stdout F hello",
    "2026-11-24T00:00:00.000000002Z stderr P par",
    "2026-11-24T00:00:00.000000003Z stdout P no-newline-",
    "2026-11-24T00:00:00.000000004Z stderr F tial",
    "2026-11-24T00:00:00.000000005Z stdout F end",
    "2026-11-24T00:00:00.000000006Z stdout F with spaces  inside ",
    "torn line after a crash",
  ].join("\n");
  assert.deepEqual(streamsOf(text), { stdout: "hello\nno-newline-end\nwith spaces  inside \n", stderr: "partial\n" });
});

test("a line that is not a CRI record is not one", () => {
  assert.equal(parseCriLogLine("garbage"), undefined);
  assert.deepEqual(parseCriLogLine("2026-11-24T00:00:00Z stdout F "), { time: "2026-11-24T00:00:00Z", stream: "stdout", partial: false, content: "" });
});
