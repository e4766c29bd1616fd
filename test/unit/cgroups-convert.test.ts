import assert from "node:assert/strict";
import { test } from "node:test";
import { blkioWeightToIoWeight, cpuSharesToWeight, deviceRuleV1, memorySwapToV2, v2Number } from "../../runtime/cgroups/convert";
import { InvalidArgumentError } from "../../runtime/errors";

test("cpu shares map onto cpu.weight with min, default and max landing on each other (runc >= 1.3.2)", () => {
  assert.equal(cpuSharesToWeight(0), 0, "0 stays unset");
  assert.equal(cpuSharesToWeight(2), 1);
  assert.equal(cpuSharesToWeight(1024), 100);
  assert.equal(cpuSharesToWeight(262144), 10000);
  assert.equal(cpuSharesToWeight(1), 1, "below the v1 minimum clamps");
  assert.equal(cpuSharesToWeight(1_000_000), 10000, "above the v1 maximum clamps");
  // Values of the quadratic fit in log2 space, rounded up as runc rounds.
  assert.equal(cpuSharesToWeight(512), 59);
  assert.equal(cpuSharesToWeight(2048), 174);
  assert.equal(cpuSharesToWeight(100), 17);
  let last = 0;
  for (let s = 2; s <= 262144; s = Math.ceil(s * 1.5)) {
    const w = cpuSharesToWeight(s);
    assert.ok(w >= last && w >= 1 && w <= 10000, `monotonic and in range at ${s}`);
    last = w;
  }
});

test("OCI memory+swap becomes v2 swap-only: (limit+swap) - limit", () => {
  assert.equal(memorySwapToV2(300, 100), 200);
  assert.equal(memorySwapToV2(100, 100), 0, "swap equal to the limit means no swap");
  assert.equal(memorySwapToV2(-1, 100), -1, "unlimited stays unlimited");
  assert.equal(memorySwapToV2(0, 100), 0, "unset stays unset");
  assert.equal(memorySwapToV2(0, -1), -1, "unlimited memory with swap unset means unlimited swap, as on v1");
  assert.equal(memorySwapToV2(500, -1), 500, "with unlimited memory the swap value is taken as is");
  assert.throws(() => memorySwapToV2(300, 0), /needs a memory limit/);
  assert.throws(() => memorySwapToV2(50, 100), (e: Error) => e instanceof InvalidArgumentError && /at least the limit/.test(e.message));
  assert.throws(() => memorySwapToV2(300, -5), /invalid memory limit/);
});

test("blkio weight 10-1000 maps linearly onto io.weight 1-10000", () => {
  assert.equal(blkioWeightToIoWeight(0), 0);
  assert.equal(blkioWeightToIoWeight(10), 1);
  assert.equal(blkioWeightToIoWeight(1000), 10000);
  assert.equal(blkioWeightToIoWeight(500), 1 + Math.floor((490 * 9999) / 990));
});

test("v2 numbers: -1 is max, 0 is unset, others verbatim", () => {
  assert.equal(v2Number(-1), "max");
  assert.equal(v2Number(0), "");
  assert.equal(v2Number(undefined), "");
  assert.equal(v2Number(33554432), "33554432");
});

test("OCI device rules become devices.allow/deny lines, with * for absent or negative numbers", () => {
  assert.equal(deviceRuleV1({ allow: false, access: "rwm" }), "a *:* rwm");
  assert.equal(deviceRuleV1({ allow: true, type: "c", major: 1, minor: 3, access: "rwm" }), "c 1:3 rwm");
  assert.equal(deviceRuleV1({ allow: true, type: "c", major: 136, access: "rw" }), "c 136:* rw");
  assert.equal(deviceRuleV1({ allow: true, type: "b", major: -1, minor: -1, access: "m" }), "b *:* m");
});

test("device rules with an unknown type or an empty access are refused, as runc refuses them", () => {
  assert.throws(() => deviceRuleV1({ allow: true, type: "x" as "a", access: "r" }, 3), /devices\[3\]: invalid device type "x"/);
  assert.throws(() => deviceRuleV1({ allow: true, type: "c", major: 1, minor: 3 }), /access "" must be made of r, w and m/);
  assert.throws(() => deviceRuleV1({ allow: true, type: "c", access: "rx" }), /access "rx"/);
});
