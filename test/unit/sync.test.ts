import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { KeyedMutex } from "../../runtime/sync/keyed-mutex";
import { limiter } from "../../runtime/sync/limit";
import { SingleFlight } from "../../runtime/sync/singleflight";

test("single-flight callers of one key share one call and its result", async () => {
  const sf = new SingleFlight<number>();
  let calls = 0;
  const fn = async () => {
    calls++;
    await tick();
    return 42;
  };
  const [a, b] = await Promise.all([sf.do("k", fn), sf.do("k", fn)]);
  assert.deepEqual([a, b, calls], [42, 42, 1]);
  await sf.do("k", fn);
  assert.equal(calls, 2, "a finished key runs again");
});

test("the limiter never runs more than n at once", async () => {
  const limit = limiter(2);
  let running = 0;
  let peak = 0;
  await Promise.all(
    Array.from({ length: 8 }, () =>
      limit(async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
      }),
    ),
  );
  assert.equal(peak, 2);
});

test("the keyed mutex serialises one key and lets other keys run alongside", async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const work = (key: string, name: string) =>
    m.run(key, async () => {
      order.push(`${name}+`);
      await tick();
      order.push(`${name}-`);
    });
  await Promise.all([work("a", "a1"), work("a", "a2"), work("b", "b1")]);
  assert.ok(order.indexOf("a1-") < order.indexOf("a2+"), order.join(" "));
  assert.ok(order.indexOf("b1+") < order.indexOf("a1-"), "b ran while a1 held its lock");
});
