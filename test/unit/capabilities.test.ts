import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidArgumentError } from "../../runtime/errors";
import { type CapSets, ErrnoError, type Syscalls } from "../../runtime/linux/types";
import {
  applyCapabilities,
  CAPABILITY_NAMES,
  capNumber,
  capsToMask,
  DOCKER_DEFAULT_CAPS,
  dropBoundingSet,
  lastCap,
  maskToCaps,
  PR,
} from "../../runtime/security/capabilities";

type Call = [string, ...unknown[]];

/**
 * Records every call; answers prctl from a simulated bounding set and refuses to raise the
 * ambient capabilities listed in `refuseAmbient` (as the kernel does without permitted+inheritable).
 */
function recordingSyscalls(bounding: bigint, refuseAmbient: number[] = []): { sys: Syscalls; calls: Call[] } {
  const calls: Call[] = [];
  let bset = bounding;
  const impl: Partial<Syscalls> = {
    prctl(option, arg2, arg3, arg4, arg5) {
      calls.push(["prctl", option, arg2, arg3, arg4, arg5].filter((a) => a !== undefined) as Call);
      const n = BigInt(arg2);
      if (option === PR.CAPBSET_READ) return Number((bset >> n) & 1n);
      if (option === PR.CAPBSET_DROP) bset &= ~(1n << n);
      if (option === PR.CAP_AMBIENT && arg2 === PR.CAP_AMBIENT_RAISE && refuseAmbient.includes(Number(arg3))) {
        throw new ErrnoError("EPERM", -1, "prctl");
      }
      return 0;
    },
    capset(sets: CapSets) {
      calls.push(["capset", sets]);
    },
  };
  const sys = new Proxy(impl, {
    get(target, name: string) {
      const method = target[name as keyof Syscalls];
      if (method) return method;
      return () => assert.fail(`applyCapabilities called ${name}`);
    },
  }) as Syscalls;
  return { sys, calls };
}

const bit = (n: number) => 1n << BigInt(n);

test("capability names map to their kernel numbers and back", () => {
  assert.equal(CAPABILITY_NAMES.length, 41);
  assert.equal(capNumber("CAP_CHOWN"), 0);
  assert.equal(capNumber("CAP_NET_BIND_SERVICE"), 10);
  assert.equal(capNumber("CAP_SYS_ADMIN"), 21);
  assert.equal(capNumber("CAP_AUDIT_WRITE"), 29);
  assert.equal(capNumber("CAP_SETFCAP"), 31);
  assert.equal(capNumber("CAP_PERFMON"), 38);
  assert.equal(capNumber("CAP_CHECKPOINT_RESTORE"), 40);
  for (const [n, name] of CAPABILITY_NAMES.entries()) assert.deepEqual(maskToCaps(capsToMask([name])), [name], `cap ${n}`);
});

test("a mask has one bit per capability and lists them back in number order", () => {
  assert.equal(capsToMask([]), 0n);
  assert.equal(capsToMask(["CAP_KILL", "CAP_CHOWN", "CAP_KILL"]), 0x21n);
  assert.equal(capsToMask(["CAP_CHECKPOINT_RESTORE"]), 1n << 40n);
  assert.deepEqual(maskToCaps(0x421n), ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
  assert.deepEqual(maskToCaps(1n << 45n), ["45"]);
});

test("Docker's default set is the 14 capabilities containerd grants", () => {
  assert.equal(DOCKER_DEFAULT_CAPS.length, 14);
  assert.equal(capsToMask(DOCKER_DEFAULT_CAPS), 0xa80425fbn);
});

test("unknown names and names without the CAP_ prefix are refused by name", () => {
  assert.throws(() => capsToMask(["CAP_CHOWN", "CAP_FLY"]), (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError);
    assert.match(err.message, /"CAP_FLY"/);
    return true;
  });
  assert.throws(() => capsToMask(["chown"]), /unknown capability "chown" \(did you mean CAP_CHOWN\?\)/);
  assert.throws(() => capsToMask(["cap_chown"]), InvalidArgumentError);
});

test("lastCap reads the kernel's highest capability number", () => {
  const last = lastCap();
  assert.ok(Number.isInteger(last) && last >= 36 && last < 64, `cap_last_cap ${last}`);
});

test("applyCapabilities drops the bounding set, then capsets, then clears and raises ambient", () => {
  const { sys, calls } = recordingSyscalls(bit(0) | bit(5) | bit(8) | bit(10) | bit(21));
  const warnings = applyCapabilities(
    sys,
    {
      bounding: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
      effective: ["CAP_NET_BIND_SERVICE"],
      permitted: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
      inheritable: ["CAP_NET_BIND_SERVICE"],
      ambient: ["CAP_NET_BIND_SERVICE"],
    },
    40,
  );
  assert.deepEqual(warnings, []);
  const reads = calls.filter((c) => c[0] === "prctl" && c[1] === PR.CAPBSET_READ).map((c) => c[2]);
  assert.deepEqual(reads, [...Array(41).keys()].filter((n) => n !== 0 && n !== 10));
  const rest = calls.filter((c) => !(c[0] === "prctl" && c[1] === PR.CAPBSET_READ));
  assert.deepEqual(rest, [
    ["prctl", PR.CAPBSET_DROP, 5],
    ["prctl", PR.CAPBSET_DROP, 8],
    ["prctl", PR.CAPBSET_DROP, 21],
    ["capset", { effective: bit(10), permitted: bit(0) | bit(10), inheritable: bit(10) }],
    ["prctl", PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL, 0, 0, 0],
    ["prctl", PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE, 10, 0, 0],
  ]);
});

test("a bounding set dropped before the user switch is not dropped again after it", () => {
  const { sys, calls } = recordingSyscalls(bit(0) | bit(5) | bit(8));
  dropBoundingSet(sys, ["CAP_CHOWN"], 40);
  applyCapabilities(sys, { bounding: ["CAP_CHOWN"] }, 40);
  const drops = calls.filter((c) => c[0] === "prctl" && c[1] === PR.CAPBSET_DROP);
  assert.deepEqual(drops, [
    ["prctl", PR.CAPBSET_DROP, 5],
    ["prctl", PR.CAPBSET_DROP, 8],
  ]);
});

test("absent lists are empty sets: everything is dropped and capset gets zeros", () => {
  const { sys, calls } = recordingSyscalls(bit(3));
  applyCapabilities(sys, {}, 40);
  assert.deepEqual(
    calls.filter((c) => c[0] !== "prctl" || c[1] !== PR.CAPBSET_READ),
    [
      ["prctl", PR.CAPBSET_DROP, 3],
      ["capset", { effective: 0n, permitted: 0n, inheritable: 0n }],
      ["prctl", PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL, 0, 0, 0],
    ],
  );
});

test("capabilities the kernel does not know are left out, as runc ignores them", () => {
  const { sys, calls } = recordingSyscalls(bit(0));
  applyCapabilities(sys, { bounding: ["CAP_CHOWN", "CAP_BPF"], effective: ["CAP_CHOWN", "CAP_BPF"], ambient: ["CAP_BPF"] }, 37);
  const reads = calls.filter((c) => c[0] === "prctl" && c[1] === PR.CAPBSET_READ);
  assert.equal(reads.length, 37, "caps 1..37 are read, nothing above the last one");
  assert.deepEqual(
    calls.find((c) => c[0] === "capset"),
    ["capset", { effective: bit(0), permitted: 0n, inheritable: 0n }],
  );
  assert.ok(!calls.some((c) => c[1] === PR.CAP_AMBIENT && c[2] === PR.CAP_AMBIENT_RAISE));
});

test("an ambient capability the kernel refuses becomes a warning and the others are still raised", () => {
  const { sys, calls } = recordingSyscalls(bit(0) | bit(10), [0]);
  const warnings = applyCapabilities(
    sys,
    { bounding: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"], ambient: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"] },
    40,
  );
  assert.deepEqual(warnings, ["ambient capability CAP_CHOWN not raised: EPERM"]);
  assert.deepEqual(calls.at(-1), ["prctl", PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE, 10, 0, 0]);
});

test("an unknown name in any list is refused before a single call is made", () => {
  const { sys, calls } = recordingSyscalls(bit(0));
  assert.throws(() => applyCapabilities(sys, { bounding: ["CAP_CHOWN"], ambient: ["CAP_NOPE"] }, 40), /CAP_NOPE/);
  assert.deepEqual(calls, []);
});
