// The Mersenne Twister as numpy's legacy global generator uses it, so that a
// bootstrap seeded with s draws the same resamples as rouge_score does after
// `np.random.seed(s)`. Internal to eval/ (not exported by mod.ts).

const N = 624;
const M = 397;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const MATRIX_A = 0x9908b0df;

/** MT19937 seeded like `np.random.seed(seed)` (Matsumoto-Nishimura init_genrand). */
export class Mt19937 {
  #state = new Uint32Array(N);
  #index = N;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`Cannot seed the generator: ${seed} is not an integer in [0, 2^32 - 1]`);
    }
    this.#state[0] = seed;
    for (let i = 1; i < N; i++) {
      const previous = this.#state[i - 1] ^ (this.#state[i - 1] >>> 30);
      // 1812433253 * previous + i, mod 2^32, without losing bits to float rounding.
      this.#state[i] = Math.imul(1812433253, previous) + i;
    }
  }

  /** The next 32-bit output (genrand_int32). */
  nextUint32(): number {
    if (this.#index >= N) this.#twist();
    let y = this.#state[this.#index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits, as `np.random.random_sample()`. */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * `count` integers uniform in [0, n), drawn as the legacy
   * `np.random.randint(0, n, size=count)` (and so `np.random.choice(n, count)`)
   * does: mask the 32-bit output to the smallest all-ones mask covering n - 1,
   * and reject values above n - 1.
   */
  integersBelow(n: number, count: number): Uint32Array {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) {
      throw new RangeError(`Cannot draw integers: ${n} is not an integer in [1, 2^32 - 1]`);
    }
    const out = new Uint32Array(count);
    const max = n - 1;
    if (max === 0) return out;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    for (let i = 0; i < count; i++) {
      let value: number;
      do value = (this.nextUint32() & mask) >>> 0; while (value > max);
      out[i] = value;
    }
    return out;
  }

  #twist(): void {
    const mt = this.#state;
    for (let i = 0; i < N; i++) {
      const y = (mt[i] & UPPER_MASK) | (mt[(i + 1) % N] & LOWER_MASK);
      mt[i] = mt[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.#index = 0;
  }
}
