import { describe, it, expect, beforeAll } from 'vitest';
import { init, keep, tensor, type Tensor } from '@lib/nn';
import { SGD, StepLR, CosineAnnealingLR, LinearLR, ReduceLROnPlateau, type LRScheduler } from '../src/optim/index.js';

let p: Tensor;
let q: Tensor;
const sgd = (lr = 1, lr2?: number) =>
  lr2 === undefined ? new SGD([p], { lr }) : new SGD([{ params: [p] }, { params: [q], lr: lr2 }], { lr });

/** Group lrs after construction and after each of `n` steps. */
function lrs(s: LRScheduler, n: number): number[][] {
  const out = [s.getLastLr()];
  for (let i = 0; i < n; i++) {
    s.step();
    out.push(s.getLastLr());
  }
  return out;
}

function expectSeq(actual: number[][], expected: number[][]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, e) => row.forEach((v, g) => {
    if (Math.abs(v - expected[e][g]) > 1e-12 * Math.max(1, Math.abs(expected[e][g]))) {
      throw new Error(`epoch ${e} group ${g}: lr ${v}, expected ${expected[e][g]}`);
    }
  }));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('lr schedulers', () => {
  beforeAll(async () => {
    await init();
    p = keep(tensor([1, 2]));
    q = keep(tensor([3]));
  });

  it('StepLR: base · gamma^⌊epoch / stepSize⌋ for each group', () => {
    const opt = sgd(1, 0.2);
    const got = lrs(new StepLR(opt, { stepSize: 3, gamma: 0.5 }), 10);
    expectSeq(got, range(11).map((e) => [0.5 ** Math.floor(e / 3), 0.2 * 0.5 ** Math.floor(e / 3)]));
    expect(opt.paramGroups.map((g) => g.lr)).toEqual(got[10]);
  });

  it('CosineAnnealingLR: etaMin + (base − etaMin)(1 + cos(π·e/tMax))/2, also past tMax', () => {
    const got = lrs(new CosineAnnealingLR(sgd(0.5), { tMax: 4, etaMin: 0.1 }), 12);
    expectSeq(got, range(13).map((e) => [0.1 + 0.4 * (1 + Math.cos((Math.PI * e) / 4)) / 2]));
    expect(got[4][0]).toBeCloseTo(0.1, 12);
    expect(got[8][0]).toBeCloseTo(0.5, 12);
  });

  it('LinearLR: factor goes from startFactor to endFactor over totalIters, then stays', () => {
    const got = lrs(new LinearLR(sgd(0.2), { startFactor: 0.25, totalIters: 4 }), 7);
    expectSeq(got, range(8).map((e) => [0.2 * (0.25 + 0.75 * Math.min(e, 4) / 4)]));
    const down = lrs(new LinearLR(sgd(1), { startFactor: 1, endFactor: 0.5, totalIters: 2 }), 3);
    expectSeq(down, [[1], [0.75], [0.5], [0.5]]);
  });

  it('chains: a second scheduler starts from the lr the first one set and from the same base lr', () => {
    const opt = sgd(1);
    const warm = new LinearLR(opt, { startFactor: 0.5, totalIters: 2 });
    const step = new StepLR(opt, { stepSize: 2, gamma: 0.1 });
    expect(step.baseLrs).toEqual([1]); // initialLr, not the warmed-up 0.5
    const seq = [opt.paramGroups[0].lr];
    for (let i = 0; i < 4; i++) {
      warm.step();
      step.step();
      seq.push(opt.paramGroups[0].lr);
    }
    // Each scheduler multiplies the current lr by its own factor: linear 0.5 → 0.75 → 1, step ×0.1 at 2 and 4.
    expectSeq(seq.map((v) => [v]), [[0.5], [0.75], [0.1], [0.1], [0.01]]);
  });

  it('stateDict → JSON → loadStateDict continues the same sequence', () => {
    const make = [
      (o: SGD) => new CosineAnnealingLR(o, { tMax: 5, etaMin: 0.01 }),
      (o: SGD) => new StepLR(o, { stepSize: 2, gamma: 0.3 }),
      (o: SGD) => new LinearLR(o, { startFactor: 0.1, totalIters: 6 }),
    ];
    for (const m of make) {
      const optA = sgd(1);
      const a = m(optA);
      for (let i = 0; i < 3; i++) a.step();
      const saved = JSON.parse(JSON.stringify(a.stateDict()));
      const optB = sgd(1);
      const b = m(optB);
      b.loadStateDict(saved);
      optB.paramGroups[0].lr = optA.paramGroups[0].lr; // the optimiser's own stateDict carries lr
      expectSeq(lrs(b, 4), lrs(a, 4));
      expect(b.lastEpoch).toBe(7);
    }
    expect(() => new StepLR(sgd(1), { stepSize: 1 }).loadStateDict({ nope: 1 })).toThrow(/unexpected key nope/);
  });

  it('rejects bad options', () => {
    expect(() => new StepLR(sgd(1), { stepSize: 0 })).toThrow(/stepSize must be a positive integer/);
    expect(() => new CosineAnnealingLR(sgd(1), { tMax: 1.5 })).toThrow(/tMax/);
    expect(() => new LinearLR(sgd(1), { startFactor: 0, totalIters: 3 })).toThrow(/startFactor/);
    expect(() => new ReduceLROnPlateau(sgd(1), { factor: 1 })).toThrow(/factor/);
    expect(() => new ReduceLROnPlateau(sgd(1, 1), { minLr: [0] })).toThrow(/1 minLr values for 2 parameter groups/);
  });
});

describe('ReduceLROnPlateau', () => {
  beforeAll(async () => {
    await init();
    p = keep(tensor([1, 2]));
    q = keep(tensor([3]));
  });

  /** The lr of group 0 after each metric. */
  const run = (s: ReduceLROnPlateau, metrics: number[]) => metrics.map((m) => (s.step(m), s.getLastLr()[0]));

  it('reduces after more than `patience` epochs without improvement', () => {
    const s = new ReduceLROnPlateau(sgd(1), { patience: 2, factor: 0.5 });
    // 10, 9 improve; three 9s are bad epochs 1, 2, 3 (> patience → halve, count restarts); 8 improves.
    expect(run(s, [10, 9, 9, 9, 9, 9, 8, 8, 8])).toEqual([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5]);
    expect(run(s, [8])).toEqual([0.25]);
  });

  it('relative and absolute thresholds decide what counts as better', () => {
    const rel = new ReduceLROnPlateau(sgd(1), { patience: 0, threshold: 0.1 });
    // 9.5 is not below 10·0.9 = 9 → reduce; 8.9 is below 9 → keep (new best 8.9).
    expect(run(rel, [10, 9.5, 8.9])).toEqual([1, 0.1, 0.1]);
    const abs = new ReduceLROnPlateau(sgd(1), { patience: 0, threshold: 0.6, thresholdMode: 'abs' });
    // 9.5 is not below 10 − 0.6 → reduce; 9.3 is below 9.4 → keep.
    expect(run(abs, [10, 9.5, 9.3])).toEqual([1, 0.1, 0.1]);
    const max = new ReduceLROnPlateau(sgd(1), { mode: 'max', patience: 1, factor: 0.5 });
    expect(run(max, [1, 2, 2, 1.5, 3, 3])).toEqual([1, 1, 1, 0.5, 0.5, 0.5]);
  });

  it('ignores bad epochs during cooldown and never goes below minLr', () => {
    const s = new ReduceLROnPlateau(sgd(1, 0.05), { patience: 1, factor: 0.1, cooldown: 2, minLr: [0.001, 0.01] });
    // Reduce at epoch 3; epochs 4, 5 are cooldown; bad epochs count again from 6 and reduce at 7.
    const both = [5, 5, 5, 5, 5, 5, 5].map((m) => (s.step(m), s.getLastLr()));
    expectSeq(both, [[1, 0.05], [1, 0.05], [0.1, 0.01], [0.1, 0.01], [0.1, 0.01], [0.1, 0.01], [0.01, 0.01]]);
    expectSeq(run(s, [5, 5, 5, 5]).map((v) => [v]), [[0.01], [0.01], [0.01], [0.001]]);
  });

  it('stateDict survives JSON (infinite best included) and resumes', () => {
    const a = new ReduceLROnPlateau(sgd(1), { patience: 1, cooldown: 1 });
    const fresh = JSON.parse(JSON.stringify(a.stateDict()));
    const b0 = new ReduceLROnPlateau(sgd(1), { patience: 5 });
    b0.loadStateDict(fresh);
    expect(b0.best).toBe(Infinity);
    expect(b0.patience).toBe(1);
    run(a, [3, 4]);
    const saved = JSON.parse(JSON.stringify(a.stateDict()));
    const optB = sgd(1);
    const b = new ReduceLROnPlateau(optB);
    b.loadStateDict(saved);
    const metrics = [4, 4, 2, 5, 5, 5];
    expect(run(b, metrics)).toEqual(run(a, metrics));
  });
});
