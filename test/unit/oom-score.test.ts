// When the daemon raises a container's oom_score_adj to its own (containerd's
// restrict_oom_score_adj): asked to, or by itself where lowering a score would fail.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decideOomScoreAdjFloor, hasSysResource, restrictOomScoreAdj } from "../../runtime/oci/oom-score";

// CapEff of root with every capability, and of this machine's root (CAP_SYS_RESOURCE, bit 24, missing).
const ALL = "Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
const NO_SYS_RESOURCE = "Name:\tnode\nCapEff:\t000001fffeffffff\n";

function reader(status: string, score = "0\n"): (path: string) => string {
  return (path) => {
    if (path === "/proc/self/status") return status;
    if (path === "/proc/self/oom_score_adj") return score;
    throw new Error(`unexpected read of ${path}`);
  };
}

describe("oom_score_adj floor", () => {
  test("CAP_SYS_RESOURCE is read from CapEff", () => {
    assert.equal(hasSysResource(ALL), true);
    assert.equal(hasSysResource(NO_SYS_RESOURCE), false);
    assert.equal(hasSysResource("Name:\tx\n"), false);
  });

  test("unset: a floor (the daemon's own score) only where the daemon cannot lower a score", () => {
    assert.equal(decideOomScoreAdjFloor(undefined, reader(ALL)), undefined);
    assert.equal(decideOomScoreAdjFloor(undefined, reader(NO_SYS_RESOURCE, "-500\n")), -500);
  });

  test("true and false decide it whatever the capabilities", () => {
    assert.equal(decideOomScoreAdjFloor(true, reader(ALL, "100\n")), 100);
    assert.equal(decideOomScoreAdjFloor(false, reader(NO_SYS_RESOURCE)), undefined);
  });

  test("a request below the floor gets the floor; others are kept", () => {
    assert.equal(restrictOomScoreAdj(-997, 0), 0);
    assert.equal(restrictOomScoreAdj(500, 0), 500);
    assert.equal(restrictOomScoreAdj(-997, undefined), -997);
  });
});
