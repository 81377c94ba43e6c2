/**
 * Seeded pseudo-random numbers for data augmentation and shuffling.
 *
 * A counter-based generator: the state advances by the golden-ratio increment and each output
 * is the state passed through a 32-bit avalanche mix (the "splitmix" idea reduced to 32 bits).
 * Period 2^32, which is plenty for per-item streams that draw a handful of numbers each.
 */

const GOLDEN = 0x9e3779b9;

/** 32-bit avalanche mix: every input bit flips each output bit with probability ~1/2. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x21f0aaad);
  x ^= x >>> 15;
  x = Math.imul(x, 0x735a2d97);
  x ^= x >>> 15;
  return x >>> 0;
}

function checkInteger(x: number, what: string): void {
  if (!Number.isSafeInteger(x)) throw new Error(`${what} must be a safe integer, got ${x}`);
}

/**
 * Hashes integers into one 32-bit seed, e.g. `deriveSeed(seed, epoch, index)` gives every item of
 * every epoch its own stream, independent of the order or the thread the item is produced in.
 */
export function deriveSeed(...parts: number[]): number {
  let h = mix32(parts.length + GOLDEN);
  for (const p of parts) {
    checkInteger(p, 'deriveSeed part');
    // Fold both halves so that seeds above 2^32 stay distinct.
    const lo = p >>> 0;
    const hi = Math.floor(p / 0x100000000) >>> 0;
    h = mix32((h ^ mix32(lo + GOLDEN)) + Math.imul(hi, GOLDEN));
  }
  return h;
}

/** A seeded random number generator; equal seeds give equal sequences. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    checkInteger(seed, 'Rng seed');
    this.state = deriveSeed(seed);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + GOLDEN) >>> 0;
    return mix32(this.state) / 0x100000000;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) {
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    return Math.floor(this.next() * n);
  }

  /** Standard normal sample (Box–Muller). */
  normal(): number {
    const u = 1 - this.next(); // in (0, 1]: log(u) is finite
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle of `a` in place; returns `a`. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}
