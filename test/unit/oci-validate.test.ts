import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultSpec } from "../../runtime/oci/default-spec";
import { preSpawnView, validateSpec } from "../../runtime/oci/validate";

import type { Spec } from "../../runtime/oci/spec-types";

const spec = () => structuredClone(defaultSpec({ terminal: false, args: ["true"] }));
/** A value of the wrong type where the schema wants another. */
const wrong = <T>(v: unknown) => v as T;

test("create reads a config before the schema check only when what it reads first has the schema's types", async () => {
  assert.ok(preSpawnView(spec()), "the default spec");
  const broken: Array<[string, (s: Spec) => void]> = [
    ["no root", (s) => delete s.root],
    ["root.path a number", (s) => (s.root!.path = wrong(1))],
    ["no process", (s) => delete s.process],
    ["process.terminal a string", (s) => (s.process!.terminal = wrong("yes"))],
    ["hostname a number", (s) => (s.hostname = wrong(7))],
    ["apparmorProfile an object", (s) => (s.process!.apparmorProfile = wrong({}))],
    ["linux an array", (s) => (s.linux = wrong([]))],
    ["namespaces an object", (s) => (s.linux!.namespaces = wrong({ type: "pid" }))],
    ["a namespace of an unknown type", (s) => s.linux!.namespaces!.push({ type: wrong("bogus") })],
    ["a namespace path a number", (s) => (s.linux!.namespaces![0]!.path = wrong(3))],
    ["a namespace listed twice", (s) => s.linux!.namespaces!.push({ ...s.linux!.namespaces![0]! })],
    ["a sysctl value that is not a string", (s) => (s.linux!.sysctl = { "net.ipv4.ip_forward": wrong(1) })],
    ["a seccomp listenerPath that is not a string", (s) => (s.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: wrong(true) })],
  ];
  for (const [what, edit] of broken) {
    const s = spec();
    edit(s);
    assert.equal(preSpawnView(s), undefined, what);
    // Each is one the full check refuses too, with its own message.
    await assert.rejects(validateSpec(s, "config.json"), /invalid OCI runtime config/, what);
  }
});
