import { describe, it, expect } from 'vitest';
import { auroc, rocCurve, rocCurves, RunningMetrics, summarize } from '../examples/xray/metrics.js';

/** Independent reference: fraction of (positive, negative) pairs ranked correctly, ties counting ½. */
function pairwiseAuroc(scores: number[], targets: number[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((p, i) => {
    if (targets[i] !== 1) return;
    scores.forEach((q, j) => {
      if (targets[j] !== 0) return;
      pairs++;
      wins += p > q ? 1 : p === q ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

/** Area under a piecewise-linear curve by the trapezoid rule. */
const trapezoid = (x: number[], y: number[]): number =>
  x.slice(1).reduce((s, xi, i) => s + ((xi - x[i]) * (y[i + 1] + y[i])) / 2, 0);

/** Deterministic pseudo-random numbers for property checks. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

describe('auroc', () => {
  it('averages tied ranks (hand-computed)', () => {
    // Pairs (pos, neg): (0.5, 0.5) → ½, (0.5, 0.2) → 1, (0.8, 0.5) → 1, (0.8, 0.2) → 1: 3.5 / 4.
    expect(auroc([0.5, 0.5, 0.2, 0.8], [1, 0, 0, 1])).toBeCloseTo(0.875, 12);
  });

  it('is 1 for a perfect ranking, 0 reversed, ½ when all scores tie', () => {
    expect(auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(auroc([0.3, 0.3, 0.3], [1, 0, 1])).toBe(0.5);
  });

  it('is null without positives or without negatives', () => {
    expect(auroc([0.1, 0.7], [0, 0])).toBeNull();
    expect(auroc([0.1, 0.7], [1, 1])).toBeNull();
  });

  it('matches pairwise counting on random scores with many ties', () => {
    const rand = lcg(7);
    for (let trial = 0; trial < 5; trial++) {
      const scores = Array.from({ length: 60 }, () => Math.round(rand() * 8) / 8);
      const targets = scores.map((s) => (rand() < 0.3 + 0.4 * s ? 1 : 0));
      expect(auroc(scores, targets)).toBeCloseTo(pairwiseAuroc(scores, targets), 12);
    }
  });

  it('rejects bad input', () => {
    expect(() => auroc([0.1, 0.2], [1])).toThrow(/targets has 1/);
    expect(() => auroc([0.1, 0.2], [1, 0.5])).toThrow(/index 1 is 0.5/);
    expect(() => auroc([Number.NaN, 0.2], [1, 0])).toThrow(/index 0 is NaN/);
  });
});

describe('rocCurve', () => {
  it('steps through distinct scores, ties moving together (hand-computed)', () => {
    // Descending: 0.8 (pos) → (0, ½); the two 0.5s (pos, neg) → (½, 1); 0.2 (neg) → (1, 1).
    expect(rocCurve([0.5, 0.5, 0.2, 0.8], [1, 0, 0, 1])).toEqual({ fpr: [0, 0, 0.5, 1], tpr: [0, 0.5, 1, 1] });
  });

  it('drops points inside straight runs', () => {
    expect(rocCurve([0.9, 0.8, 0.7, 0.1], [1, 1, 1, 0])).toEqual({ fpr: [0, 0, 1], tpr: [0, 1, 1] });
  });

  it('encloses the AUROC', () => {
    const rand = lcg(3);
    const scores = Array.from({ length: 80 }, () => Math.round(rand() * 10) / 10);
    const targets = scores.map((s) => (rand() < s ? 1 : 0));
    const curve = rocCurve(scores, targets)!;
    expect(trapezoid(curve.fpr, curve.tpr)).toBeCloseTo(pairwiseAuroc(scores, targets), 12);
  });
});

describe('summarize', () => {
  // Class 0 predicted [1,1,0,0] vs [1,0,1,0]: tp 1, fp 1, fn 1, tn 1.
  // Class 1 predicted [0,1,0,0] vs [0,1,1,0]: tp 1, fp 0, fn 1, tn 2.
  const probs = new Float32Array([0.9, 0.1, 0.8, 0.7, 0.3, 0.4, 0.2, 0.2]);
  const targets = new Float32Array([1, 0, 0, 1, 1, 1, 0, 0]);

  it('computes micro and macro precision, recall and F1 (hand-computed)', () => {
    const m = summarize(probs, targets, ['a', 'b']);
    expect(m.n).toBe(4);
    expect(m.accuracy).toBeCloseTo(5 / 8, 12);
    expect(m.precision.micro).toBeCloseTo(2 / 3, 12);
    expect(m.recall.micro).toBeCloseTo(1 / 2, 12);
    expect(m.f1.micro).toBeCloseTo(4 / 7, 12);
    expect(m.precision.macro).toBeCloseTo((1 / 2 + 1) / 2, 12);
    expect(m.recall.macro).toBeCloseTo((1 / 2 + 1 / 2) / 2, 12);
    expect(m.f1.macro).toBeCloseTo((1 / 2 + 2 / 3) / 2, 12);
    expect(m.perClass.map((c) => c.support)).toEqual([2, 2]);
    expect(m.perClass.map((c) => c.auroc)).toEqual([0.75, 1]);
    expect(m.meanAuroc).toBeCloseTo(0.875, 12);
  });

  it('reports an absent class as null and leaves it out of the mean AUROC', () => {
    // Class c has no positives: AUROC null, precision/recall/F1 0 by zero division, still in macro means.
    const p = new Float32Array([0.9, 0.1, 0.1, 0.8, 0.7, 0.2, 0.3, 0.4, 0.3]);
    const t = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 0]);
    const m = summarize(p, t, ['a', 'b', 'c']);
    expect(m.perClass[2]).toEqual({ label: 'c', support: 0, precision: 0, recall: 0, f1: 0, auroc: null });
    expect(m.perClass[0].auroc).toBe(1);
    expect(m.perClass[1].auroc).toBe(1);
    expect(m.meanAuroc).toBe(1);
    // F1: a = 2/3 (tp 1, fp 1), b = 1, c = 0.
    expect(m.f1.macro).toBeCloseTo((2 / 3 + 1 + 0) / 3, 12);
    expect(JSON.parse(JSON.stringify(m))).toEqual(m);
  });

  it('counts a probability equal to the threshold as positive', () => {
    const m = summarize(new Float32Array([0.5, 0.49]), new Float32Array([1, 0]), ['x']);
    expect(m.accuracy).toBe(1);
  });

  it('gives null mean AUROC when no class is defined', () => {
    expect(summarize(new Float32Array([0.2, 0.9]), new Float32Array([0, 0]), ['x']).meanAuroc).toBeNull();
  });

  it('rejects shapes that do not match the labels', () => {
    expect(() => summarize(new Float32Array(5), new Float32Array(5), ['a', 'b'])).toThrow(/rows of k=2/);
  });

  it('gives ROC curves only for classes with both outcomes', () => {
    const p = new Float32Array([0.9, 0.1, 0.2, 0.8]);
    const t = new Float32Array([1, 0, 0, 0]);
    const curves = rocCurves(p, t, ['a', 'b']);
    expect(curves.map((c) => c.label)).toEqual(['a']);
    expect(curves[0]).toMatchObject({ auroc: 1, fpr: [0, 0, 1], tpr: [0, 1, 1] });
  });
});

describe('RunningMetrics', () => {
  it('accumulates batches to the micro metrics of the whole set and a sample-weighted loss', () => {
    const probs = [0.9, 0.1, 0.8, 0.7, 0.3, 0.4, 0.2, 0.2];
    const targets = [1, 0, 0, 1, 1, 1, 0, 0];
    const run = new RunningMetrics(2);
    expect(run.loss).toBeNaN();
    run.update(probs.slice(0, 6), targets.slice(0, 6), 1.0);
    run.update(probs.slice(6), targets.slice(6), 2.0);
    const whole = summarize(probs, targets, ['a', 'b']);
    expect(run.count).toBe(4);
    expect(run.loss).toBeCloseTo((3 * 1 + 1 * 2) / 4, 12);
    expect(run.accuracy).toBeCloseTo(whole.accuracy, 12);
    expect(run.precision).toBeCloseTo(whole.precision.micro, 12);
    expect(run.recall).toBeCloseTo(whole.recall.micro, 12);
    expect(run.f1).toBeCloseTo(whole.f1.micro, 12);
    run.reset();
    expect(run.count).toBe(0);
    expect(run.f1).toBe(0);
  });

  it('rejects a batch of the wrong width', () => {
    expect(() => new RunningMetrics(3).update([0.1, 0.2], [0, 1])).toThrow(/rows of k=3/);
  });
});
