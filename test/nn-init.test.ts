import { describe, it, expect, beforeAll } from 'vitest';
import { init, manualSeed, Tensor } from '@lib/nn';
import {
  calculateGain, constant_, fanInAndFanOut, kaimingNormal_, kaimingUniform_, normal_, ones_, uniform_, xavierUniform_, zeros_,
} from '../src/nn/init.js';
import { Conv2d, Linear } from '../src/nn/layers/index.js';

const stats = async (t: Tensor) => {
  const d = await t.data();
  let s = 0;
  let s2 = 0;
  let maxAbs = 0;
  for (const v of d) {
    s += v;
    s2 += v * v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = s / d.length;
  return { mean, std: Math.sqrt(s2 / d.length - mean * mean), maxAbs, min: Math.min(...d), max: Math.max(...d) };
};

describe('nn.init', () => {
  beforeAll(async () => { await init(); });

  it('gains and fans follow torch.nn.init', () => {
    expect(calculateGain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
    expect(calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(fanInAndFanOut(Tensor.empty([64, 16, 3, 3]))).toEqual({ fanIn: 144, fanOut: 576 });
    expect(fanInAndFanOut(Tensor.empty([10, 20]))).toEqual({ fanIn: 20, fanOut: 10 });
    expect(() => fanInAndFanOut(Tensor.empty([5]))).toThrow(/at least 2 dimensions/);
  });

  it('kaimingNormal_ (fanOut, relu) has std √2/√fanOut', async () => {
    const s = await stats(kaimingNormal_(Tensor.empty([64, 16, 3, 3]), { mode: 'fanOut', nonlinearity: 'relu' }));
    expect(Math.abs(s.mean)).toBeLessThan(0.003);
    expect(s.std / Math.sqrt(2 / 576)).toBeGreaterThan(0.96);
    expect(s.std / Math.sqrt(2 / 576)).toBeLessThan(1.04);
  });

  it('kaimingUniform_ and xavierUniform_ stay inside their bounds and fill them', async () => {
    const ku = await stats(kaimingUniform_(Tensor.empty([50, 200])));
    const bound = Math.sqrt(6 / 200);
    expect(ku.maxAbs).toBeLessThanOrEqual(bound);
    expect(ku.maxAbs).toBeGreaterThan(0.99 * bound);
    expect(ku.std / (bound / Math.sqrt(3))).toBeCloseTo(1, 1);
    const xu = await stats(xavierUniform_(Tensor.empty([50, 200]), 2));
    const xb = 2 * Math.sqrt(6 / 250);
    expect(xu.maxAbs).toBeLessThanOrEqual(xb);
    expect(xu.maxAbs).toBeGreaterThan(0.99 * xb);
  });

  it('Conv2d and Linear get PyTorch defaults: weight and bias in ±1/√fanIn', async () => {
    const conv = new Conv2d(8, 32, 3);
    const w = await stats(conv.weight);
    const b = await stats(conv.bias!);
    const bound = 1 / Math.sqrt(72);
    expect(w.maxAbs).toBeLessThanOrEqual(bound);
    expect(w.maxAbs).toBeGreaterThan(0.98 * bound);
    expect(w.std / (bound / Math.sqrt(3))).toBeCloseTo(1, 1);
    expect(b.maxAbs).toBeLessThanOrEqual(bound);
    const lin = new Linear(100, 300);
    const lw = await stats(lin.weight);
    expect(lw.maxAbs).toBeLessThanOrEqual(0.1);
    expect(lw.maxAbs).toBeGreaterThan(0.099);
  });

  it('is reproducible under manualSeed', async () => {
    manualSeed(123);
    const a = Array.from(await new Linear(4, 4).weight.data());
    manualSeed(123);
    const b = Array.from(await new Linear(4, 4).weight.data());
    const c = Array.from(await new Linear(4, 4).weight.data());
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('constant, normal and uniform fills', async () => {
    const t = Tensor.empty([3, 4]);
    expect(Array.from(await zeros_(t).data())).toEqual(new Array(12).fill(0));
    expect(Array.from(await ones_(t).data())).toEqual(new Array(12).fill(1));
    expect(Array.from(await constant_(t, -2.5).data())).toEqual(new Array(12).fill(-2.5));
    const n = await stats(normal_(Tensor.empty([4000]), 3, 0.5));
    expect(n.mean).toBeCloseTo(3, 1);
    expect(n.std).toBeCloseTo(0.5, 1);
    const u = await stats(uniform_(Tensor.empty([4000]), 2, 5));
    expect(u.min).toBeGreaterThanOrEqual(2);
    expect(u.max).toBeLessThan(5);
    expect(u.mean).toBeCloseTo(3.5, 1);
  });
});
