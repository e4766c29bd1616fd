// The cgroup v2 device filter, run on an eBPF interpreter of the instructions it uses: the OCI
// rules decide as devices.allow/deny written in order would (later rules win), no match denies.
// The kernel loading and enforcing it is proven in the cgroup v2 guest (cgroups-v2-vm.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LinuxDeviceCgroup } from "../../runtime/cgroups/types";
import { deviceFilterProgram, encodeProgram, runDeviceFilter } from "../../runtime/cgroups/v2-devices";

// runc's default device rules after a deny-all: what every container gets.
const rules: LinuxDeviceCgroup[] = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, // null
  { allow: true, type: "c", major: 1, minor: 5, access: "rwm" }, // zero
  { allow: true, type: "c", major: 136, access: "rwm" }, // pts/*
  { allow: true, type: "c", major: 5, minor: 1, access: "rw" }, // console, no mknod
  { allow: false, type: "c", major: 1, minor: 5, access: "w" }, // later: no writes to zero
];

test("the filter allows what the rules allow, a later rule overrides an earlier one, and no match denies", () => {
  const prog = deviceFilterProgram(rules);
  const run = (type: "b" | "c", major: number, minor: number, access: string) => runDeviceFilter(prog, { type, major, minor, access });
  assert.equal(run("c", 1, 3, "rw"), 1, "null");
  assert.equal(run("c", 1, 3, "m"), 1, "mknod null");
  assert.equal(run("c", 136, 7, "rw"), 1, "any pts");
  assert.equal(run("c", 5, 1, "rw"), 1, "console read/write");
  assert.equal(run("c", 5, 1, "m"), 0, "console mknod is not in its rule");
  assert.equal(run("c", 1, 5, "r"), 1, "zero read");
  assert.equal(run("c", 1, 5, "w"), 0, "zero write: the later deny wins");
  assert.equal(run("c", 1, 8, "r"), 0, "random: no rule");
  assert.equal(run("b", 1, 3, "r"), 0, "a block device with null's numbers");
  assert.equal(runDeviceFilter(deviceFilterProgram([{ allow: true, access: "rwm" }]), { type: "b", major: 8, minor: 0, access: "rwm" }), 1, "allow all");
});

test("the encoding is struct bpf_insn: 8 bytes each, registers packed src:dst", () => {
  const prog = deviceFilterProgram([{ allow: true, type: "c", major: 1, minor: 3, access: "r" }]);
  const bytes = encodeProgram(prog);
  assert.equal(bytes.length, prog.length * 8);
  assert.equal(bytes[0], 0x61, "first: r2 = ctx->access_type");
  assert.equal(bytes[1], (1 << 4) | 2);
  assert.equal(bytes.at(-8), 0x95, "last: exit");
});
