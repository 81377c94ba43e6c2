import { describe, it, expect, beforeAll } from 'vitest';
import { init, tensor, manualSeed, ones, type Tensor } from '@lib/nn';
import { dropConnect, dropout } from '../src/nn/functional/index.js';

/** An input with no zeros, so a zero in the output can only come from the mask. */
const input = (shape: number[], requiresGrad = false) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, (_, i) => 1 + (i % 7) * 0.25), shape, { requiresGrad });
};

/** Binomial bounds: |fraction − p| within 5 standard deviations. */
const tolerance = (p: number, n: number) => 5 * Math.sqrt((p * (1 - p)) / n);

describe('dropout', () => {
  beforeAll(async () => {
    await init();
  });

  it('zeroes about p of the elements and scales the rest by 1/(1-p)', async () => {
    for (const [shape, p] of [[[64, 64], 0.3], [[999], 0.5], [[5, 7, 11], 0.1]] as [number[], number][]) {
      const x = input(shape);
      const xs = await x.data();
      const y = await dropout(x, p).data();
      let zeros = 0;
      for (let i = 0; i < y.length; i++) {
        if (y[i] === 0) zeros++;
        else expect(y[i]).toBeCloseTo(xs[i] / (1 - p), 5);
      }
      expect(Math.abs(zeros / y.length - p), `shape [${shape}] p=${p}`).toBeLessThan(tolerance(p, y.length));
    }
  });

  it('is the identity in eval mode and with p = 0, and zeroes everything with p = 1', async () => {
    const x = input([4, 5]);
    expect(dropout(x, 0.5, false)).toBe(x);
    expect(dropout(x, 0)).toBe(x);
    expect(Array.from(await dropout(x, 1).data())).toEqual(new Array(20).fill(0));
    expect(() => dropout(x, 1.5)).toThrow(/dropout: probability p must be in \[0, 1\], got 1.5/);
    expect(() => dropout(x, -0.1)).toThrow(/got -0.1/);
  });

  it('draws masks from the global seed, independent of the kernel layout', async () => {
    manualSeed(42);
    const a = await dropout(ones([1000]), 0.5).data();
    manualSeed(42);
    const b = await dropout(ones([1001]), 0.5).data(); // 1001 is not a multiple of 4: scalar kernel
    const c = await dropout(ones([1000]), 0.5).data(); // next seed: a different mask
    expect(Array.from(b.subarray(0, 1000))).toEqual(Array.from(a));
    let differ = 0;
    for (let i = 0; i < 1000; i++) if (a[i] !== c[i]) differ++;
    expect(differ).toBeGreaterThan(300);
  });

  it('backpropagates through the same mask', async () => {
    for (const shape of [[16, 8], [3, 5, 7]]) {
      const x = input(shape, true);
      const y = dropout(x, 0.4);
      const g = input(shape);
      y.backward(g);
      const [xs, ys, gs, dx] = await Promise.all([x.data(), y.data(), g.data(), x.grad!.data()]);
      for (let i = 0; i < xs.length; i++) {
        // y = x·m/(1-p) and dx = g·m/(1-p) with the same m.
        expect(dx[i]).toBeCloseTo((gs[i] * ys[i]) / xs[i], 5);
      }
    }
  });
});

describe('dropConnect', () => {
  beforeAll(async () => {
    await init();
  });

  async function samplesOf(y: Tensor, x: Tensor): Promise<('kept' | 'dropped')[]> {
    const [ys, xs] = await Promise.all([y.data(), x.data()]);
    const per = x.numel / x.shape[0];
    return Array.from({ length: x.shape[0] }, (_, n) => {
      const row = Array.from(ys.subarray(n * per, (n + 1) * per));
      if (row.every((v) => v === 0)) return 'dropped';
      row.forEach((v, k) => expect(v).toBeCloseTo(xs[n * per + k] / 0.75, 5));
      return 'kept';
    });
  }

  it('drops whole samples with probability p and scales kept ones by 1/(1-p)', async () => {
    for (const shape of [[1000, 2, 2], [600, 3, 1, 1]]) {
      const x = input(shape);
      const rows = await samplesOf(dropConnect(x, 0.25, true), x);
      const dropped = rows.filter((r) => r === 'dropped').length / rows.length;
      expect(Math.abs(dropped - 0.25), `shape [${shape}]`).toBeLessThan(tolerance(0.25, rows.length));
    }
  });

  it('backpropagates through the same per-sample mask and is the identity in eval mode', async () => {
    const x = input([40, 3, 5], true);
    const y = dropConnect(x, 0.25, true);
    y.backward(ones(x.shape));
    const rows = await samplesOf(y, x);
    const dx = await x.grad!.data();
    rows.forEach((r, n) => {
      for (let k = 0; k < 15; k++) expect(dx[n * 15 + k]).toBeCloseTo(r === 'kept' ? 1 / 0.75 : 0, 5);
    });
    expect(rows).toContain('kept');
    expect(rows).toContain('dropped');
    expect(dropConnect(x, 0.25, false)).toBe(x);
    expect(Array.from(await dropConnect(x, 1, true).data())).toEqual(new Array(600).fill(0));
    expect(() => dropConnect(x, 2, true)).toThrow(/dropConnect: probability p must be in \[0, 1\]/);
  });
});
