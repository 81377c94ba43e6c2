/**
 * Timing and checking shared by every bench case: each case prepares the same work for both
 * libraries, checks that their results agree, then times one iteration at a time with tinybench.
 */
import { Bench } from 'tinybench';

/** Work units of a case: FLOPs, bytes moved or images per timed iteration. */
export type Unit = 'GFLOP/s' | 'GB/s' | 'images/s';

/**
 * Sleeps before a read-back for most of the time the work should take. On lavapipe, Dawn's awaited
 * map request polls in a busy loop that takes one of the two cores from the driver's workers; both
 * libraries get the same treatment, and the sleep counts in the time.
 *
 * The sleep is 80 % of the fastest iteration that outlasted its sleep. An iteration that ends just
 * after its sleep measured the sleep, not the work (which may have finished long before): the next
 * sleep is then half of that iteration, and so after an unpaced one, which the busy loop slows by up
 * to 5x. Without that, a first iteration 5x too slow made the next ones sleep 0.8x, 0.64x, ... of it,
 * and a median of 7 could time the sleeps instead of the work.
 */
export class Pacer {
  private t0 = 0;
  private paced = false;
  private slept = 0;
  private sleepMs = 0;
  private fastest = Infinity;
  /** Whether the last iteration was paced and outlasted its sleep: later sleeps fit the work. */
  settled = false;

  start(): void {
    this.t0 = performance.now();
    this.paced = false;
    this.slept = 0;
  }

  async wait(): Promise<void> {
    this.paced = this.sleepMs > 0;
    const ms = this.sleepMs - (performance.now() - this.t0);
    if (ms <= 1) return;
    await new Promise((res) => setTimeout(res, ms));
    this.slept = performance.now() - this.t0;
  }

  end(): void {
    const ms = performance.now() - this.t0;
    // An iteration whose sleep was too short to take (under 1 ms) cannot have timed it.
    this.settled = this.paced && (this.slept === 0 || ms > 1.1 * this.slept + 1);
    if (this.settled) this.fastest = Math.min(this.fastest, ms);
    this.sleepMs = this.settled ? 0.8 * this.fastest : 0.5 * ms;
  }
}

/** One library's side of a case: `fn` records the work and waits for it (calling `pacer.wait()` just before the wait). */
export interface Timed {
  fn: (pacer: Pacer) => Promise<void>;
  /** Untimed preparation before every iteration (e.g. the forward pass before a timed backward). */
  beforeEach?: () => Promise<void>;
  afterEach?: () => void;
}

export interface Prepared {
  ours: Timed;
  theirs: Timed;
  /** Runs both sides once on the same inputs and compares the results; throws on a mismatch. */
  check: () => Promise<string>;
  dispose: () => void;
}

export interface Case {
  group: string;
  name: string;
  shape: string;
  unit: Unit;
  /** FLOPs, bytes or images per iteration. */
  work: number;
  /** Part of `--quick`. */
  quick: boolean;
  /** How the timed part is delimited, for the README (e.g. "backward alone"). */
  note?: string;
  prepare: () => Promise<Prepared>;
}

export interface Measure {
  /** Median of the timed iterations. */
  medianMs: number;
  /** Work per second in the case's unit. */
  rate: number;
  iterations: number;
}

export interface Row {
  group: string;
  name: string;
  shape: string;
  unit: Unit;
  note?: string;
  ours: Measure | null;
  tfjs: Measure | null;
  /** ms of the first call of ours and of tfjs after the check (`firstCalls`; not measured with `--quick`). */
  firstMs: [ours: number, tfjs: number] | null;
  /** ours rate / tfjs rate: above 1 means we are faster. */
  speedup: number | null;
  check: string;
  error?: string;
}

/**
 * Times one call of each side after the check: the compilation of what the check did not run (the
 * backward and optimiser of a training step) and each library's first-use costs.
 */
export async function firstCalls(sides: [Timed, Timed]): Promise<[number, number]> {
  const ms: number[] = [];
  for (const t of sides) {
    await t.beforeEach?.();
    const t0 = performance.now();
    await t.fn(new Pacer());
    ms.push(performance.now() - t0);
    t.afterEach?.();
  }
  return [ms[0], ms[1]];
}

/** Most untimed iterations a side runs before the timed rounds to settle its pacer. */
const MAX_WARMUPS = 6;

/**
 * Times both sides of a case: `iterations` rounds of one tinybench run with one iteration of ours
 * and one of theirs. Alternating keeps the shared machine's slow swings in speed out of the ratio.
 * Before the first round each side runs untimed until its pacer has settled (see `Pacer`), except
 * that a single round (`--quick`) follows one untimed iteration: that saves a warm-up step of each
 * training case, the slowest part of `--quick`. A round in which a side timed its sleep rather
 * than its work (its pacer did not settle) is run again, at most `MAX_WARMUPS` times in all.
 */
export async function measurePair(sides: [Timed, Timed], unit: Unit, work: number, iterations: number): Promise<[Measure, Measure]> {
  const pacers = sides.map(() => new Pacer());
  // An async function, which tinybench awaits (a plain one returning a promise it would not).
  const once = (t: Timed, i: number) => async () => {
    pacers[i].start();
    await t.fn(pacers[i]);
    pacers[i].end();
  };
  for (const [i, t] of sides.entries()) {
    for (let n = 0; n < (iterations > 1 ? MAX_WARMUPS : 1) && !pacers[i].settled; n++) {
      await t.beforeEach?.();
      await once(t, i)();
      t.afterEach?.();
    }
  }
  const samples: number[][] = sides.map(() => []);
  let reruns = 0;
  for (let round = 0; round < iterations; round++) {
    const bench = new Bench({ iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0, throws: true, retainSamples: true });
    sides.forEach((t, i) => bench.add(String(i), once(t, i), { beforeEach: t.beforeEach, afterEach: t.afterEach }));
    await bench.run();
    if (!pacers.every((p) => p.settled) && reruns++ < MAX_WARMUPS) {
      round--;
      continue;
    }
    bench.tasks.forEach((task, i) => {
      const r = task.result;
      if (r.state !== 'completed' || !r.latency.samples) throw new Error(`timing did not complete (${r.state})`);
      samples[i].push(...r.latency.samples);
    });
  }
  const scale = unit === 'images/s' ? 1 : 1e9;
  const result = (i: number): Measure => {
    const sorted = [...samples[i]].sort((x, y) => x - y);
    const mid = sorted.length >> 1;
    const medianMs = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return { medianMs, rate: work / scale / (medianMs / 1000), iterations: sorted.length };
  };
  return [result(0), result(1)];
}

/** Largest |a − b| relative to (atol + rtol·|b|); at most 1 means close. Throws naming the case when not. */
export function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-3, atol = 1e-4): string {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values vs ${want.length}`);
  let worst = 0;
  let at = -1;
  let maxAbs = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const r = d / (atol + rtol * Math.abs(want[i]));
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
    if (d > maxAbs) maxAbs = d;
  }
  if (!(worst <= 1)) throw new Error(`${what}: element ${at} is ${got[at]}, the other library has ${want[at]} (rtol ${rtol}, atol ${atol})`);
  return `ok (max |diff| ${maxAbs.toExponential(1)})`;
}

/** Seeded normal samples (mulberry32 and Box–Muller), so every run times the same data. */
export function randomData(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next()));
    const a = 2 * Math.PI * next();
    out[i] = scale * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = scale * r * Math.sin(a);
  }
  return out;
}

/** Reorders a row-major array of `shape` by `perm` (output dim i is input dim perm[i]). */
export function permuteData(data: ArrayLike<number>, shape: number[], perm: number[]): Float32Array {
  const outShape = perm.map((p) => shape[p]);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(data.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < perm.length; d++) src += idx[d] * inStrides[perm[d]];
    out[o] = data[src];
    for (let d = perm.length - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** NCHW → NHWC and back, and PyTorch conv weights [O, I, kh, kw] → TensorFlow [kh, kw, I, O]. */
export const nchwToNhwc = (d: ArrayLike<number>, s: number[]) => permuteData(d, s, [0, 2, 3, 1]);
export const nhwcToNchw = (d: ArrayLike<number>, s: number[]) => permuteData(d, s, [0, 3, 1, 2]);
export const oihwToHwio = (d: ArrayLike<number>, s: number[]) => permuteData(d, s, [2, 3, 1, 0]);
