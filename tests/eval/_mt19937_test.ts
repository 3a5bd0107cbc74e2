import assert from "node:assert/strict";
import { Mt19937 } from "../../eval/_mt19937.ts";

// Reference values from numpy's legacy generator (numpy 2.4.6 on this machine; the first two are
// also the widely quoted outputs of these calls).

Deno.test("Mt19937 matches np.random.seed(0); np.random.rand()", () => {
  assert.equal(new Mt19937(0).nextDouble(), 0.5488135039273248);
});

Deno.test("Mt19937.integersBelow() matches np.random.randint(0, 10, 10)", () => {
  assert.deepEqual([...new Mt19937(0).integersBelow(10, 10)], [5, 0, 3, 3, 7, 9, 3, 5, 2, 4]);
  assert.deepEqual([...new Mt19937(42).integersBelow(10, 10)], [6, 3, 7, 4, 6, 9, 2, 6, 7, 4]);
});

Deno.test("Mt19937.integersBelow() matches np.random.choice(np.arange(3), size=3)", () => {
  // np.random.seed(123); np.random.choice(np.arange(3), size=3) -> [2, 1, 2].
  assert.deepEqual([...new Mt19937(123).integersBelow(3, 3)], [2, 1, 2]);
});

Deno.test("Mt19937.integersBelow() draws nothing for n = 1", () => {
  const rng = new Mt19937(5);
  assert.deepEqual([...rng.integersBelow(1, 4)], [0, 0, 0, 0]);
  assert.equal(rng.nextUint32(), new Mt19937(5).nextUint32());
});
