// The probe runner's logic with a scripted probe (the real probes run in the reconciler's
// integration test): the startup probe holds liveness and readiness back, thresholds count
// consecutive results, readiness flips both ways, liveness reports a failure once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Probe } from "@kubernetes/client-node";
import { ContainerProbes, type ProbeEvent } from "../../reconciler/probe-runner";
import type { ProbeResult } from "../../reconciler/probes";
import type { RuntimeService } from "../../runtime/api/runtime";

const fast = (p: Partial<V1Probe>): V1Probe => ({ periodSeconds: 0.02, ...p });
const target = { containerId: "c1", host: "127.0.0.1", namedPorts: {} };

function scripted(results: Record<string, boolean[]>) {
  const calls: string[] = [];
  const probe = async (_rt: RuntimeService, p: V1Probe): Promise<ProbeResult> => {
    const kind = p.exec!.command![0]!;
    calls.push(kind);
    const list = results[kind]!;
    const ok = list.length > 1 ? list.shift()! : list[0]!;
    return { ok, message: `${kind} ${ok ? "ok" : "failed"}` };
  };
  return { calls, probe };
}

test("the startup probe holds the others back until it succeeds; then readiness makes the container ready", async () => {
  const { calls, probe } = scripted({ startup: [false, false, true], live: [true], ready: [true] });
  const events: ProbeEvent[] = [];
  const r = new ContainerProbes(
    {} as RuntimeService,
    { startup: fast({ exec: { command: ["startup"] }, failureThreshold: 5 }), liveness: fast({ exec: { command: ["live"] } }), readiness: fast({ exec: { command: ["ready"] } }) },
    target,
    Date.now(),
    (e) => events.push(e),
    probe,
  );
  try {
    assert.equal(r.started, false);
    assert.equal(r.ready, false);
    await sleep(200);
    const firstOther = calls.findIndex((c) => c !== "startup");
    assert.deepEqual(calls.slice(0, firstOther), ["startup", "startup", "startup"], "nothing else ran before startup succeeded");
    assert.equal(r.started, true);
    assert.equal(r.ready, true);
    assert.deepEqual(
      events.map((e) => e.type),
      ["started", "ready"],
    );
  } finally {
    r.stop();
  }
});

test("liveness fails after failureThreshold consecutive failures, once; readiness flips back and forth without a failure", async () => {
  const { probe } = scripted({ live: [true, false, true, false, false, false], ready: [true, false, true] });
  const events: ProbeEvent[] = [];
  const r = new ContainerProbes(
    {} as RuntimeService,
    { liveness: fast({ exec: { command: ["live"] }, failureThreshold: 2 }), readiness: fast({ exec: { command: ["ready"] }, failureThreshold: 1 }) },
    target,
    Date.now(),
    (e) => events.push(e),
    probe,
  );
  try {
    await sleep(300);
    const failed = events.filter((e) => e.type === "failed");
    assert.equal(failed.length, 1, "a failed liveness probe is reported once and stops");
    assert.match((failed[0] as { message: string }).message, /liveness probe failed 2 times/);
    const ready = events.filter((e): e is Extract<ProbeEvent, { type: "ready" }> => e.type === "ready").map((e) => e.ready);
    assert.deepEqual(ready.slice(0, 3), [true, false, true]);
  } finally {
    r.stop();
  }
});

test("without a readiness probe a started container is ready at once", () => {
  const r = new ContainerProbes({} as RuntimeService, {}, target, Date.now(), () => {});
  assert.equal(r.started, true);
  assert.equal(r.ready, true);
  r.stop();
});
