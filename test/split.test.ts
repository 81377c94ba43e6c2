/**
 * Every op on tensors larger than one storage binding: the limit is lowered so that small shapes
 * need several chunks (boundaries not aligned to items, batch 1, odd sizes), and each op is checked
 * forward and backward against the float64 reference.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as nn from '@lib/nn';
import { init, type Tensor } from '@lib/nn';
import { setMaxBindingSizeForTesting } from '../src/tensor/device.js';
import {
  adaptiveAvgPool2d, avgPool2d, batchNorm, batchNormStats, binaryCrossEntropyWithLogits, crossEntropy, dropConnect, dropout, linear, maxPool2d, mseLoss,
} from '../src/nn/functional/index.js';
import { mm } from '../src/tensor/ops/matmul.js';
import * as R from './reference/index.js';
import { expectClose, gradcheck, toTensor } from './gradcheck.js';

const rng = new R.Rng(4242);
/** 4 KiB (the least element-wise ops split under): 960 floats per range binding once the alignment slack is taken off. */
const LIMIT = 4096;
/** Gradient checks run on this shape: above the limit, and quick for the float64 finite differences. */
const SMALL = [3, 5, 7, 11];
const dist = (shape: number[]) => {
  const n = R.numel(shape);
  const perm = Array.from({ length: n }, (_, i) => i).sort(() => rng.next() - 0.5);
  return R.arr(shape, perm.map((p) => (p - n / 2) * 0.01));
};

beforeAll(async () => {
  await init();
});
beforeEach(() => setMaxBindingSizeForTesting(LIMIT));
afterEach(() => setMaxBindingSizeForTesting(undefined));

describe('reductions split over the binding limit', () => {
  // [2,1500] and [1500,3]: one row above the limit; [2,1200] over dim 0: boxes combine into the output.
  const shapes: [number[], (number | number[] | undefined)[]][] = [
    [[5, 6, 7, 11], [undefined, 0, 1, 3, [0, 2], [1, 3], [0, 2, 3], [0, 1, 2]]],
    [[2, 1500], [undefined, 0, 1]],
    [[1500, 3], [0, 1]],
    [[1, 3001], [1]],
    [[2, 1200], [0]],
  ];
  for (const [name, gpu, ref] of [
    ['sum', nn.sum, R.sum],
    ['mean', nn.mean, R.mean],
    ['max', nn.max, R.max],
    ['min', nn.min, R.min],
  ] as const) {
    it(`${name} forward and backward`, async () => {
      for (const [shape, dimsList] of shapes) {
        const a = dist(shape);
        for (const dims of dimsList) {
          await expectClose(gpu(toTensor(a), dims as number[]), ref(a, dims as number[]), 1e-4, 1e-4, `${name} [${shape}] dims ${dims}`);
        }
      }
      await gradcheck((x) => gpu(x, [0, 2]), (x) => ref(x, [0, 2]), [dist(SMALL)]);
    });
  }

  it('argmax and argmin', async () => {
    for (const [shape, dims] of [[[5, 6, 7, 11], [0, 1, 2, 3]], [[2, 1500], [0, 1]], [[2, 1200], [0]], [[1, 3001], [1]]] as [number[], number[]][]) {
      const a = dist(shape);
      for (const d of dims) {
        await expectClose(nn.argmax(toTensor(a), d), R.argmax(a, d), 0, 0, `argmax [${shape}] dim ${d}`);
        await expectClose(nn.argmin(toTensor(a), d), R.argmax(R.neg(a), d), 0, 0, `argmin [${shape}] dim ${d}`);
      }
      await expectClose(nn.argmax(toTensor(a)), R.argmax(R.reshape(a, [a.data.length]), 0), 0, 0, `argmax [${shape}]`);
    }
  });

  it('variance, softmax and logSoftmax forward and backward', async () => {
    const a = R.randArr([5, 6, 7, 11], rng, -3, 3);
    const s = R.randArr(SMALL, rng, -3, 3);
    await expectClose(nn.variance(toTensor(a), [0, 2, 3]), R.variance(a, [0, 2, 3], true));
    await gradcheck((x) => nn.variance(x, [1, 3]), (x) => R.variance(x, [1, 3]), [s]);
    for (const dim of [0, 1, 3]) {
      await expectClose(nn.softmax(toTensor(a), dim), R.softmax(a, dim), 1e-5, 1e-4, `softmax dim ${dim}`);
      await expectClose(nn.logSoftmax(toTensor(a), dim), R.logSoftmax(a, dim), 1e-5, 1e-4, `logSoftmax dim ${dim}`);
    }
    await gradcheck((x) => nn.softmax(x, 1), (x) => R.softmax(x, 1), [s]);
    await gradcheck((x) => nn.logSoftmax(x, 3), (x) => R.logSoftmax(x, 3), [s]);
    const rows = R.randArr([2, 1300], rng, -3, 3);
    await expectClose(nn.softmax(toTensor(rows), 1), R.softmax(rows, 1), 1e-6, 1e-4, 'softmax of long rows');
  });

  it('broadcast gradients are summed back to the operand shapes', async () => {
    const a = R.randArr(SMALL, rng);
    for (const bs of [[5, 1, 1], [1, 5, 1, 11], [1]]) {
      const b = R.randArr(bs, rng);
      await gradcheck((x, y) => nn.mul(x, nn.expand(y, x.shape)), (x, y) => R.mul(x, y), [a, b]);
    }
  });
});

describe('movement ops split over the binding limit', () => {
  const a = R.randArr([5, 6, 7, 11], rng);
  it('permute, transpose and expand', async () => {
    for (const dims of [[0, 1, 2, 3], [3, 2, 1, 0], [1, 0, 3, 2], [0, 3, 1, 2]]) {
      await expectClose(nn.permute(toTensor(a), dims), R.permute(a, dims), 1e-6, 1e-6, `permute ${dims}`);
    }
    await gradcheck((x) => nn.permute(x, [2, 0, 3, 1]), (x) => R.permute(x, [2, 0, 3, 1]), [R.randArr(SMALL, rng)]);
    const m = R.randArr([37, 61], rng);
    await expectClose(nn.transpose(toTensor(m), 0, 1), R.transpose(m, 0, 1), 1e-6, 1e-6, 'transpose');
    const s = R.randArr([6, 1, 11], rng);
    await expectClose(nn.expand(toTensor(s), [5, 6, 7, 11]), R.expand(s, [5, 6, 7, 11]), 1e-6, 1e-6, 'expand');
    await gradcheck((x) => nn.expand(x, [5, 6, 7, 11]), (x) => R.expand(x, [5, 6, 7, 11]), [s]);
  });

  it('slice, narrow, cat, stack and pad', async () => {
    await expectClose(nn.slice(toTensor(a), 2, 1, 6, 2), R.slice(a, 2, 1, 6, 2), 1e-6, 1e-6, 'slice');
    const s = R.randArr(SMALL, rng);
    await gradcheck((x) => nn.slice(x, 3, 2, 9, 3), (x) => R.slice(x, 3, 2, 9, 3), [s]);
    await expectClose(nn.narrow(toTensor(a), 1, 1, 3), R.narrow(a, 1, 1, 3), 1e-6, 1e-6, 'narrow');
    const b = R.randArr([5, 2, 7, 11], rng);
    await expectClose(nn.cat([toTensor(a), toTensor(b)], 1), R.cat([a, b], 1), 1e-6, 1e-6, 'cat');
    await gradcheck((x, y) => nn.cat([x, y], 1), (x, y) => R.cat([x, y], 1), [s, R.randArr([3, 2, 7, 11], rng)]);
    await expectClose(nn.stack([toTensor(a), toTensor(a)], 2), R.stack([a, a], 2), 1e-6, 1e-6, 'stack');
    await expectClose(nn.pad(toTensor(a), [1, 2, -1, 3], 0.5), R.pad(a, [1, 2, -1, 3], 0.5), 1e-6, 1e-6, 'pad');
    await gradcheck((x) => nn.pad(x, [2, 1, 1, -2]), (x) => R.pad(x, [2, 1, 1, -2]), [s]);
  });

  it('fill and random numbers', async () => {
    await expectClose(nn.full([5, 6, 7, 11], 2.5), R.full([5, 6, 7, 11], 2.5), 0, 0, 'full');
    nn.manualSeed(5);
    const small = await nn.rand([3001]).data();
    setMaxBindingSizeForTesting(undefined);
    nn.manualSeed(5);
    const whole = await nn.rand([3001]).data();
    expect(Array.from(small)).toEqual(Array.from(whole));
  });
});

describe('batch norm splits by images over the binding limit', () => {
  it('training forward, running statistics and backward; eval forward and backward', async () => {
    // [5,3,7,11]: one image per chunk at unaligned offsets (5 is prime); [6,4,8,8]: 3 images per chunk, vec4 loads.
    for (const shape of [[5, 3, 7, 11], [6, 4, 8, 8]]) {
      const c = shape[1];
      const x = R.randArr(shape, rng, -2, 3);
      const weight = R.randArr([c], rng, 0.5, 1.5);
      const bias = R.randArr([c], rng);
      const runningMean = R.randArr([c], rng);
      const runningVar = R.randArr([c], rng, 0.5, 2);
      const dOut = R.randArr(shape, rng);
      const ref = R.batchNorm2dTrain(x, { weight, bias, runningMean, runningVar, momentum: 0.2, eps: 1e-3 });
      const refGrad = R.batchNorm2dBackward(x, dOut, { weight, eps: 1e-3 });
      const [xt, wt, bt, rm, rv] = [toTensor(x, true), toTensor(weight, true), toTensor(bias, true), toTensor(runningMean), toTensor(runningVar)];
      const out = batchNorm(xt, rm, rv, wt, bt, { training: true, momentum: 0.2, eps: 1e-3 });
      await expectClose(out, ref.out, 1e-5, 1e-4, `[${shape}] out`);
      await expectClose(rm, ref.runningMean, 1e-5, 1e-4, `[${shape}] runningMean`);
      await expectClose(rv, ref.runningVar, 1e-5, 1e-4, `[${shape}] runningVar`);
      out.backward(toTensor(dOut));
      await expectClose(xt.grad!, refGrad.dInput, 1e-4, 1e-3, `[${shape}] dx`);
      await expectClose(wt.grad!, refGrad.dWeight, 1e-4, 1e-3, `[${shape}] dWeight`);
      await expectClose(bt.grad!, refGrad.dBias, 1e-4, 1e-3, `[${shape}] dBias`);
      const stats = batchNormStats(toTensor(x));
      await expectClose(stats.mean, ref.mean, 1e-5, 1e-4, `[${shape}] batchNormStats mean`);
      await expectClose(stats.var, ref.var, 1e-5, 1e-4, `[${shape}] batchNormStats var`);
      const evalParams = { weight, bias, runningMean, runningVar, eps: 1e-3 };
      await expectClose(
        batchNorm(toTensor(x), toTensor(runningMean), toTensor(runningVar), toTensor(weight), toTensor(bias), { training: false, eps: 1e-3 }),
        R.batchNorm2dEval(x, evalParams), 1e-5, 1e-4, `[${shape}] eval out`,
      );
      await gradcheck(
        (xx) => batchNorm(xx, toTensor(runningMean), toTensor(runningVar), toTensor(weight), toTensor(bias), { training: false, eps: 1e-3 }),
        (xx) => R.batchNorm2dEval(xx, evalParams), [x],
      );
    }
  });

  it('names the sizes when one image does not fit', () => {
    const x = nn.zeros([1, 3, 20, 20]);
    expect(() => batchNorm(x, null, null, null, null, { training: true })).toThrow(/batchNorm: one item needs a 4800-byte binding, above the 4096-byte storage binding limit \(\[1,3,20,20\]\)/);
  });
});

describe('pooling splits by planes over the binding limit', () => {
  // 15 planes of 9x11 (9 per chunk, so chunks end mid-image), and batch 1 with one 24x24 plane per chunk.
  const shapes = [[3, 5, 9, 11], [1, 2, 24, 24]];
  it('maxPool2d and avgPool2d forward and backward', async () => {
    for (const shape of shapes) {
      const x = dist(shape);
      const mp = { kernelSize: 3, stride: 2, padding: 1 } as const;
      await expectClose(maxPool2d(toTensor(x), 3, { stride: 2, padding: 1 }), R.maxPool2d(x, mp), 1e-6, 1e-6, `maxPool2d [${shape}]`);
      await gradcheck((t) => maxPool2d(t, 3, { stride: 2, padding: 1 }), (a) => R.maxPool2d(a, mp), [x]);
      const ap = { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0], ceilMode: true, countIncludePad: false } as const;
      const avg = (t: Tensor) => avgPool2d(t, [3, 2], { stride: [2, 1], padding: [1, 0], ceilMode: true, countIncludePad: false });
      await expectClose(avg(toTensor(x)), R.avgPool2d(x, ap), 1e-6, 1e-5, `avgPool2d [${shape}]`);
      await gradcheck(avg, (a) => R.avgPool2d(a, ap), [x]);
    }
  });

  it('adaptiveAvgPool2d forward and backward (global and binned)', async () => {
    for (const shape of [...shapes, [2, 5, 12, 12]]) {
      const x = R.randArr(shape, rng);
      for (const size of [1, [3, 4]] as (number | [number, number])[]) {
        const pair: [number, number] = typeof size === 'number' ? [size, size] : size;
        await expectClose(adaptiveAvgPool2d(toTensor(x), size), R.adaptiveAvgPool2d(x, pair), 1e-6, 1e-5, `adaptiveAvgPool2d [${shape}] -> ${size}`);
        await gradcheck((t) => adaptiveAvgPool2d(t, size), (a) => R.adaptiveAvgPool2d(a, pair), [x]);
      }
    }
  });

  it('names the sizes when one plane does not fit', () => {
    const x = nn.zeros([1, 1, 40, 40]);
    expect(() => maxPool2d(x, 2)).toThrow(/maxPool2d: one item needs a 6400-byte binding, above the 4096-byte storage binding limit/);
  });
});

describe('losses and dropout split over the binding limit', () => {
  it('binaryCrossEntropyWithLogits with broadcast weights, forward and backward', async () => {
    const x = R.randArr([20, 61], rng, -4, 4);
    const y = R.randArr([20, 61], rng, 0, 1);
    const weight = R.randArr([20, 1], rng, 0.5, 2);
    const posWeight = R.randArr([61], rng, 0.5, 3);
    for (const reduction of ['none', 'mean'] as const) {
      const gpuFn = (a: Tensor, b: Tensor) => binaryCrossEntropyWithLogits(a, b, { weight: toTensor(weight), posWeight: toTensor(posWeight), reduction });
      const refFn = (a: R.Arr, b: R.Arr) => R.binaryCrossEntropyWithLogits(a, b, { weight, posWeight, reduction });
      await expectClose(gpuFn(toTensor(x), toTensor(y)), refFn(x, y), 1e-5, 1e-4, `bce ${reduction}`);
      if (reduction === 'mean') await gradcheck(gpuFn, refFn, [x, y]);
    }
  });

  it('crossEntropy in chunks of rows, forward and backward', async () => {
    // 13 rows of 70 logits per chunk: chunks start mid-binding-block.
    const x = R.randArr([16, 70], rng, -3, 3);
    const target = Array.from({ length: 16 }, (_, i) => (i % 7 === 3 ? -100 : (i * 13) % 70));
    const weight = R.randArr([70], rng, 0.5, 2);
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      const gpuFn = (a: Tensor) => crossEntropy(a, target, { weight: toTensor(weight), reduction });
      const kept = target.map((t, i) => [t, i]).filter(([t]) => t >= 0);
      // The reference has no ignoreIndex: compare on the rows kept ('none' checks every row, ignored ones give 0).
      const refRows = (a: R.Arr) => R.crossEntropy(R.arr([kept.length, 70], kept.flatMap(([, i]) => Array.from(a.data.slice(i * 70, i * 70 + 70)))), kept.map(([t]) => t), { weight, reduction });
      const refFn = (a: R.Arr) => {
        const r = refRows(a);
        if (reduction !== 'none') return r;
        const full = R.arr([16]);
        kept.forEach(([, i], k) => { full.data[i] = r.data[k]; });
        return full;
      };
      await expectClose(gpuFn(toTensor(x)), refFn(x), 1e-5, 1e-4, `crossEntropy ${reduction}`);
      if (reduction === 'mean') await gradcheck(gpuFn, refFn, [x]);
    }
    await gradcheck((a, b) => mseLoss(a, b), (a, b) => R.mseLoss(a, b), [R.randArr([31, 41], rng), R.randArr([31, 41], rng)]);
  });

  it('dropout and dropConnect give the masks of the unsplit run, and matching gradients', async () => {
    for (const [shape, f] of [
      [[3001], (t: Tensor) => dropout(t, 0.3)],
      [[40, 50], (t: Tensor) => dropout(t, 0.6)],
      [[5, 3, 7, 11], (t: Tensor) => dropConnect(t, 0.4, true)],
      [[6, 4, 8, 8], (t: Tensor) => dropConnect(t, 0.5, true)],
    ] as [number[], (t: Tensor) => Tensor][]) {
      const x = R.randArr(shape, rng, 1, 2);
      nn.manualSeed(9);
      const xt = toTensor(x, true);
      const y = f(xt);
      y.backward(nn.onesLike(y));
      const split = [await y.data(), await xt.grad!.data()];
      setMaxBindingSizeForTesting(undefined);
      nn.manualSeed(9);
      const whole = await f(toTensor(x)).data();
      setMaxBindingSizeForTesting(LIMIT);
      expect(Array.from(split[0]), `[${shape}]`).toEqual(Array.from(whole));
      // the gradient of Σ y is the mask times the scale: y / x
      await expectClose(xt.grad!, R.arr(shape, Array.from(split[0], (v, i) => v / x.data[i])), 1e-5, 1e-4, `grad [${shape}]`);
      expect(split[0].some((v) => v === 0) && split[0].some((v) => v !== 0)).toBe(true);
    }
  });
});

describe('matmul and linear split over the binding limit', () => {
  it('batched matmul in groups of matrices, broadcast batches one matrix at a time', async () => {
    for (const [sa, sb] of [[[5, 13, 17], [5, 17, 11]], [[3, 1, 20, 30], [4, 30, 9]], [[20, 30], [7, 30, 9]]]) {
      const a = R.randArr(sa, rng);
      const b = R.randArr(sb, rng);
      await expectClose(nn.matmul(toTensor(a), toTensor(b)), R.matmul(a, b), 1e-5, 1e-4, `[${sa}] x [${sb}]`);
    }
    const a = R.randArr([5, 13, 17], rng);
    const b = R.randArr([5, 17, 11], rng);
    await gradcheck((x, y) => nn.matmul(x, y), (x, y) => R.matmul(x, y), [a, b]);
  });

  it('one large matrix by rows of the output, or by ranges of k with partial sums; both kernels', async () => {
    // [70,16]x[16,12]: by rows (aligned ranges); [12,100]x[100,10]: by k (A copied transposed, unaligned
    // ranges staged), its gradient for A as Cᵀ by rows; [1,3001]x[3001,2]: by k, one row of A.
    for (const [sa, sb, grad] of [[[70, 16], [16, 12], true], [[12, 100], [100, 10], true], [[1, 3001], [3001, 2], false]] as [number[], number[], boolean][]) {
      const a = R.randArr(sa, rng);
      const b = R.randArr(sb, rng);
      await expectClose(mm(toTensor(a), toTensor(b)), R.matmul(a, b), 1e-4, 1e-4, `[${sa}] x [${sb}]`);
      if (grad) await gradcheck((x, y) => nn.matmul(x, y), (x, y) => R.matmul(x, y), [a, b]);
    }
    const a = R.randArr([70, 16], rng);
    const b = R.randArr([16, 12], rng);
    await expectClose(mm(toTensor(a), toTensor(b), false, false, { subgroups: false }), R.matmul(a, b), 1e-4, 1e-4, 'without subgroups');
  });

  it('linear on many rows, forward and backward', async () => {
    const x = R.randArr([70, 30], rng);
    const w = R.randArr([20, 30], rng);
    const bias = R.randArr([20], rng);
    await expectClose(linear(toTensor(x), toTensor(w), toTensor(bias)), R.linear(x, w, bias), 1e-5, 1e-4, 'linear');
    await gradcheck((a, b, c) => linear(a, b, c), (a, b, c) => R.linear(a, b, c), [x, w, bias]);
  });

  it('names the shapes when no split fits', () => {
    const a = nn.zeros([40, 40]);
    expect(() => nn.matmul(a, a)).toThrow(/matmul \[40,40\] x \[40,40\]: no split of this product fits the 3840-byte storage binding limit/);
  });
});
