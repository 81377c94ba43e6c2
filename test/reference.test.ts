import { describe, it, expect } from 'vitest';
import {
  type Arr, Rng, arr, randArr, at, numericGrad,
  broadcastShape, broadcastTo, add, sub, mul, div, pow, maximum, minimum, gt, ge, lt, le, eq, where,
  exp, log, sqrt, rsqrt, abs, neg, relu, sigmoid, tanh, silu, clamp,
  sum, mean, max, min, variance, argmax, softmax, logSoftmax,
  reshape, permute, transpose, expand, cat, stack, slice, narrow, pad,
  matmul, conv2d, conv2dBackward, convGeometry, samePadding, torchSamePadding, type Conv2dOptions,
  maxPool2d, maxPool2dWithIndices, maxPool2dBackward, avgPool2d, avgPool2dBackward, poolOutputSize,
  adaptiveAvgPool2d, adaptiveAvgPool2dBackward, adaptiveBin, type AvgPool2dOptions,
  batchNorm2dTrain, batchNorm2dEval, batchNorm2dBackward,
  binaryCrossEntropyWithLogits, binaryCrossEntropyWithLogitsBackward, crossEntropy, crossEntropyBackward,
  mseLoss, mseLossBackward, type BceWithLogitsOptions, type Reduction,
  linear, linearBackward, sgdStep, sgdState, adamStep, adamwStep, adamState,
} from './reference/index.js';

/** Asserts |actual - expected| <= atol + rtol*|expected| elementwise, reporting the worst element. */
function expectClose(actual: Arr | ArrayLike<number>, expected: Arr | ArrayLike<number>, atol = 1e-9, rtol = 1e-9): void {
  const a = 'data' in actual ? actual.data : actual;
  const e = 'data' in expected ? expected.data : expected;
  if ('shape' in actual && 'shape' in expected) expect(actual.shape).toEqual(expected.shape);
  expect(a.length).toBe(e.length);
  let worst = -Infinity;
  let where = -1;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - e[i]) - (atol + rtol * Math.abs(e[i]));
    if (!(excess <= worst)) [worst, where] = [excess, i];
  }
  expect(worst <= 0 ? 'ok' : `element ${where}: ${a[where]} vs ${e[where]}`).toBe('ok');
}

/** Σ f(x)·R: a scalar whose gradient w.r.t. f's output is R, to check backward passes. */
function dotWith(out: Arr, r: Arr): number {
  let s = 0;
  for (let i = 0; i < out.data.length; i++) s += out.data[i] * r.data[i];
  return s;
}

describe('reference arrays', () => {
  it('indexes row-major and rejects bad shapes and indices', () => {
    const a = arr([2, 3], [0, 1, 2, 3, 4, 5]);
    expect(at(a, 1, 2)).toBe(5);
    expect(at(a, 1, 0)).toBe(3);
    expect(() => at(a, 2, 0)).toThrow(/out of bounds/);
    expect(() => at(a, 1)).toThrow(/entries/);
    expect(() => arr([2, 2], [1, 2, 3])).toThrow(/needs 4/);
    expect(randArr([3, 4], new Rng(1)).data.length).toBe(12);
  });
});

describe('elementwise', () => {
  it('broadcasts shapes like NumPy and throws on mismatch', () => {
    expect(broadcastShape([2, 1, 3], [4, 3])).toEqual([2, 4, 3]);
    expect(broadcastShape([], [5])).toEqual([5]);
    expect(broadcastShape([5, 1], [1, 0])).toEqual([5, 0]);
    expect(() => broadcastShape([2, 3], [3, 2])).toThrow(/\[2, 3\] and \[3, 2\]/);
    expect(broadcastTo(arr([2, 1], [1, 2]), [2, 2, 3]).data).toEqual(Float64Array.from([1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]));
    expect(() => broadcastTo(arr([2], [1, 2]), [3])).toThrow(/cannot broadcast/);
  });

  it('computes binary ops with broadcasting', () => {
    const col = arr([2, 1], [10, 20]);
    const row = arr([3], [1, 2, 3]);
    expect(add(col, row).data).toEqual(Float64Array.from([11, 12, 13, 21, 22, 23]));
    expect(sub(col, row).data).toEqual(Float64Array.from([9, 8, 7, 19, 18, 17]));
    expect(mul(row, 2).data).toEqual(Float64Array.from([2, 4, 6]));
    expect(div(1, row).data).toEqual(Float64Array.from([1, 1 / 2, 1 / 3]));
    expect(pow(row, 2).data).toEqual(Float64Array.from([1, 4, 9]));
    expect(maximum(row, 2).data).toEqual(Float64Array.from([2, 2, 3]));
    expect(minimum(row, 2).data).toEqual(Float64Array.from([1, 2, 2]));
    expect(Number.isNaN(maximum(arr([1], [NaN]), 1).data[0])).toBe(true);
    expect([gt, ge, lt, le, eq].map((f) => Array.from(f(row, 2).data))).toEqual([
      [0, 0, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0], [0, 1, 0],
    ]);
    expect(where(arr([2, 1], [1, 0]), row, -1).data).toEqual(Float64Array.from([1, 2, 3, -1, -1, -1]));
  });

  it('computes unary ops, sigmoid stably at extremes', () => {
    const x = arr([5], [-1000, -1, 0, 2, 1000]);
    expectClose(sigmoid(x), [0, 1 / (1 + Math.E), 0.5, 1 / (1 + Math.exp(-2)), 1], 1e-15);
    expectClose(silu(x), [-0, -1 / (1 + Math.E), 0, 2 / (1 + Math.exp(-2)), 1000], 1e-12);
    expect(relu(x).data).toEqual(Float64Array.from([0, 0, 0, 2, 1000]));
    expect(clamp(x, -1, 1).data).toEqual(Float64Array.from([-1, -1, 0, 1, 1]));
    expect(clamp(x, undefined, 0).data).toEqual(Float64Array.from([-1000, -1, 0, 0, 0]));
    expect(() => clamp(x)).toThrow(/min and max/);
    const p = arr([3], [0.25, 1, 4]);
    expectClose(rsqrt(p), [2, 1, 0.5]);
    expectClose(sqrt(p), [0.5, 1, 2]);
    expectClose(log(exp(p)), p, 1e-15);
    expectClose(tanh(arr([1], [0.5])), [(Math.exp(1) - 1) / (Math.exp(1) + 1)], 1e-15);
    expect(abs(neg(p)).data).toEqual(p.data);
  });
});

describe('reductions', () => {
  const a = arr([2, 3], [1, 5, 3, 4, 2, 6]);

  it('sums, averages and takes extremes over dims', () => {
    expect(sum(a).data[0]).toBe(21);
    expect(sum(a).shape).toEqual([]);
    expect(Array.from(sum(a, 0).data)).toEqual([5, 7, 9]);
    expect(sum(a, -1, true).shape).toEqual([2, 1]);
    expect(Array.from(mean(a, 1).data)).toEqual([3, 4]);
    expect(Array.from(max(a, 1).data)).toEqual([5, 6]);
    expect(Array.from(min(a, 0).data)).toEqual([1, 2, 3]);
    const b = randArr([2, 3, 4], new Rng(3));
    expectClose(sum(b, [0, 2]), sum(sum(b, 2), 0), 1e-12);
    expectClose(sum(b, [2, 0], true), reshape(sum(b, [0, 2]), [1, 3, 1]), 1e-12);
    expect(() => sum(b, [1, -2])).toThrow(/twice/);
    expect(() => sum(b, 3)).toThrow(/out of range/);
  });

  it('computes variance with and without Bessel correction', () => {
    const v = arr([4], [1, 2, 3, 4]);
    expectClose(variance(v), [5 / 3], 1e-15);
    expectClose(variance(v, 0, false), [1.25], 1e-15);
    expectClose(variance(a, 1, true, true), arr([2, 1], [4, 4]), 1e-15);
  });

  it('argmax returns the first maximum', () => {
    expect(Array.from(argmax(arr([2, 4], [1, 3, 3, 2, 7, 0, 7, 7]), 1).data)).toEqual([1, 0]);
    expect(Array.from(argmax(a, 0).data)).toEqual([1, 0, 1]);
  });

  it('softmax rows sum to 1 and logSoftmax is its log, stable for large inputs', () => {
    const x = randArr([3, 5], new Rng(4), -3, 3);
    expectClose(sum(softmax(x, 1), 1), [1, 1, 1], 1e-14);
    expectClose(sum(softmax(x, 0), 0), [1, 1, 1, 1, 1], 1e-14);
    expectClose(logSoftmax(x, -1), log(softmax(x, -1)), 1e-13);
    const big = arr([1, 2], [1000, 1001]);
    expectClose(softmax(big, 1), [1 / (1 + Math.E), Math.E / (1 + Math.E)], 1e-15);
    expectClose(logSoftmax(big, 1), [-Math.log1p(Math.E), -Math.log1p(Math.exp(-1))], 1e-13);
  });
});

describe('shape ops', () => {
  const a = arr([2, 3], [0, 1, 2, 3, 4, 5]);

  it('reshapes, permutes and transposes', () => {
    expect(reshape(a, [3, -1]).shape).toEqual([3, 2]);
    expect(() => reshape(a, [4, -1])).toThrow(/cannot view/);
    expect(Array.from(transpose(a, 0, 1).data)).toEqual([0, 3, 1, 4, 2, 5]);
    const b = randArr([2, 3, 4], new Rng(5));
    const p = permute(b, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    expect(at(p, 3, 1, 2)).toBe(at(b, 1, 2, 3));
    expect(permute(p, [1, 2, 0])).toEqual(b);
    expect(() => permute(b, [0, 0, 1])).toThrow(/permutation/);
  });

  it('expands, concatenates, stacks and slices', () => {
    expect(Array.from(expand(arr([2, 1], [7, 8]), [3, -1, 2]).data)).toEqual([7, 7, 8, 8, 7, 7, 8, 8, 7, 7, 8, 8]);
    const c = cat([a, arr([2, 1], [9, 9])], 1);
    expect(Array.from(c.data)).toEqual([0, 1, 2, 9, 3, 4, 5, 9]);
    expect(narrow(c, 1, 0, 3)).toEqual(a);
    expect(Array.from(slice(c, 1, 1, -1, 2).data)).toEqual([1, 4]);
    expect(() => narrow(c, 1, 3, 2)).toThrow(/out of range/);
    const s = stack([a, a], 2);
    expect(s.shape).toEqual([2, 3, 2]);
    expect(at(s, 1, 2, 1)).toBe(5);
    expect(cat([a, a], 0)).toEqual(reshape(stack([a, a], 0), [4, 3]));
  });

  it('pads in F.pad order, negative pads crop', () => {
    const p = pad(a, [1, 0, 0, 1], -1);
    expect(p.shape).toEqual([3, 4]);
    expect(Array.from(p.data)).toEqual([-1, 0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1]);
    expect(pad(p, [-1, 0, 0, -1])).toEqual(a);
    expect(pad(a, [0, -1])).toEqual(narrow(a, 1, 0, 2));
    expect(() => pad(a, [1, 2, 3])).toThrow(/pairs/);
  });
});

describe('matmul', () => {
  it('multiplies matrices and vectors as torch.matmul', () => {
    const m = arr([2, 2], [1, 2, 3, 4]);
    expect(Array.from(matmul(m, arr([2, 2], [5, 6, 7, 8])).data)).toEqual([19, 22, 43, 50]);
    const v = arr([2], [1, 1]);
    expect(matmul(v, v).shape).toEqual([]);
    expect(matmul(v, v).data[0]).toBe(2);
    expect(Array.from(matmul(m, v).data)).toEqual([3, 7]);
    expect(Array.from(matmul(v, m).data)).toEqual([4, 6]);
    expect(() => matmul(m, arr([3], [1, 2, 3]))).toThrow(/inner sizes/);
  });

  it('broadcasts batch dims', () => {
    const rng = new Rng(6);
    const a = randArr([2, 1, 3, 4], rng);
    const b = randArr([3, 4, 5], rng);
    const c = matmul(a, b);
    expect(c.shape).toEqual([2, 3, 3, 5]);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        const aij = reshape(narrow(a, 0, i, 1), [3, 4]);
        const bj = reshape(narrow(b, 0, j, 1), [4, 5]);
        expectClose(reshape(narrow(narrow(c, 0, i, 1), 1, j, 1), [3, 5]), matmul(aij, bj), 1e-14);
      }
    }
    expect(matmul(arr([4], [1, 0, 0, 0]), b).shape).toEqual([3, 5]);
  });
});

/** conv2d as im2col + matmul, written independently of the reference's loops. */
function conv2dIm2col(x: Arr, w: Arr, b: Arr | undefined, opts: Conv2dOptions): Arr {
  const g = convGeometry(x.shape, w.shape, opts);
  const padded = pad(x, [g.left, g.right, g.top, g.bottom]);
  const rows = g.cPerGroup * g.kh * g.kw;
  const outs: Arr[] = [];
  for (let n = 0; n < g.n; n++) {
    const groupOuts: Arr[] = [];
    for (let gi = 0; gi < g.groups; gi++) {
      const cols = arr([rows, g.oh * g.ow]);
      for (let c = 0; c < g.cPerGroup; c++) {
        for (let ky = 0; ky < g.kh; ky++) {
          for (let kx = 0; kx < g.kw; kx++) {
            for (let oy = 0; oy < g.oh; oy++) {
              for (let ox = 0; ox < g.ow; ox++) {
                const r = (c * g.kh + ky) * g.kw + kx;
                cols.data[r * g.oh * g.ow + oy * g.ow + ox] =
                  at(padded, n, gi * g.cPerGroup + c, oy * g.sh + ky * g.dh, ox * g.sw + kx * g.dw);
              }
            }
          }
        }
      }
      const wg = reshape(narrow(w, 0, gi * g.oPerGroup, g.oPerGroup), [g.oPerGroup, rows]);
      groupOuts.push(matmul(wg, cols));
    }
    outs.push(reshape(cat(groupOuts, 0), [g.o, g.oh, g.ow]));
  }
  const y = stack(outs, 0);
  return b === undefined ? y : add(y, reshape(b, [g.o, 1, 1]));
}

const convCases: { name: string; x: number[]; w: number[]; opts: Conv2dOptions; bias: boolean }[] = [
  { name: 'plain 3x3', x: [2, 3, 5, 6], w: [4, 3, 3, 3], opts: {}, bias: true },
  { name: 'stride 2, padding 1', x: [1, 2, 7, 6], w: [3, 2, 3, 3], opts: { stride: 2, padding: 1 }, bias: true },
  { name: 'asymmetric pads, rect stride', x: [1, 2, 6, 7], w: [2, 2, 3, 2], opts: { stride: [2, 1], padding: [0, 1, 2, 1] }, bias: false },
  { name: 'dilation 2', x: [1, 2, 7, 7], w: [2, 2, 3, 3], opts: { dilation: 2, padding: [2, 1] }, bias: true },
  { name: 'groups 2', x: [2, 4, 5, 5], w: [6, 2, 3, 3], opts: { groups: 2, padding: 1 }, bias: true },
  { name: 'depthwise x2 multiplier', x: [1, 3, 6, 6], w: [6, 1, 3, 3], opts: { groups: 3, stride: 2, padding: samePadding(6, 6, 3, 3, 2) }, bias: true },
  { name: "padding 'same' even kernel", x: [1, 2, 5, 5], w: [2, 2, 4, 2], opts: { padding: 'same', dilation: [1, 2] }, bias: false },
];

describe('conv2d', () => {
  it('matches a hand-computed case', () => {
    const x = arr([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const w = arr([1, 1, 2, 2], [1, 0, 0, -1]);
    expect(Array.from(conv2d(x, w, arr([1], [10])).data)).toEqual([6, 6, 6, 6]);
    // Padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1).
    expect(Array.from(conv2d(x, w, undefined, { padding: 1, stride: 2 }).data)).toEqual([-1, -3, -7, -4]);
  });

  for (const c of convCases) {
    it(`equals im2col + matmul and numeric gradients: ${c.name}`, () => {
      const rng = new Rng(11);
      const x = randArr(c.x, rng);
      const w = randArr(c.w, rng);
      const b = c.bias ? randArr([c.w[0]], rng) : undefined;
      const y = conv2d(x, w, b, c.opts);
      expectClose(y, conv2dIm2col(x, w, b, c.opts), 1e-12);
      const r = randArr(y.shape, rng);
      const grads = conv2dBackward(x, w, r, c.opts);
      const bias = b ?? arr([c.w[0]]);
      expectClose(grads.dInput.data, numericGrad(() => dotWith(conv2d(x, w, bias, c.opts), r), x.data), 1e-7);
      expectClose(grads.dWeight.data, numericGrad(() => dotWith(conv2d(x, w, bias, c.opts), r), w.data), 1e-7);
      expectClose(grads.dBias.data, numericGrad(() => dotWith(conv2d(x, w, bias, c.opts), r), bias.data), 1e-7);
    });
  }

  it('rejects inconsistent shapes and options', () => {
    const x = arr([1, 4, 5, 5]);
    expect(() => conv2d(x, arr([2, 3, 3, 3]))).toThrow(/groups=1/);
    expect(() => conv2d(x, arr([3, 2, 3, 3]), undefined, { groups: 2 })).toThrow(/groups=2/);
    expect(() => conv2d(x, arr([2, 4, 3, 3]), undefined, { padding: 'same', stride: 2 })).toThrow(/stride 1/);
    expect(() => conv2d(x, arr([2, 4, 7, 7]))).toThrow(/smaller/);
    expect(() => conv2d(x, arr([2, 4, 3, 3]), arr([3]))).toThrow(/bias/);
  });

  it('gives TF-style static same padding', () => {
    expect(samePadding(224, 224, 3, 3, 2)).toEqual([0, 1, 0, 1]);
    expect(samePadding(225, 225, 3, 3, 2)).toEqual([1, 1, 1, 1]);
    expect(samePadding(7, 7, 5, 5, 1)).toEqual([2, 2, 2, 2]);
    expect(samePadding(112, 112, 5, 5, 2)).toEqual([1, 2, 1, 2]);
    expect(samePadding(10, 9, 1, 1, 2)).toEqual([0, 0, 0, 0]);
    expect(samePadding(8, 8, 3, 3, 1, 2)).toEqual([2, 2, 2, 2]);
    for (const [size, k, s] of [[224, 3, 2], [225, 5, 2], [7, 3, 1], [15, 5, 2], [9, 3, 3]]) {
      const pads = samePadding(size, size, k, k, s);
      const y = conv2d(arr([1, 1, size, size]), arr([1, 1, k, k]), undefined, { stride: s, padding: pads });
      expect(y.shape.slice(2)).toEqual([Math.ceil(size / s), Math.ceil(size / s)]);
    }
  });

  it("gives PyTorch padding='same' pads that keep the size", () => {
    expect(torchSamePadding(3, 4)).toEqual([1, 1, 1, 2]);
    expect(torchSamePadding(3, 3, 2)).toEqual([2, 2, 2, 2]);
    expect(conv2d(arr([1, 1, 6, 5]), arr([1, 1, 4, 3]), undefined, { padding: 'same', dilation: 3 }).shape).toEqual([1, 1, 6, 5]);
  });
});

describe('pooling', () => {
  it('computes output sizes with the ceil-mode rule', () => {
    expect(poolOutputSize(5, 2, 2, 0, false)).toBe(2);
    expect(poolOutputSize(5, 2, 2, 0, true)).toBe(3);
    expect(poolOutputSize(4, 2, 2, 1, true)).toBe(3);
    // The last window would start past input + left padding, so it is dropped.
    expect(poolOutputSize(6, 1, 2, 0, true)).toBe(3);
    expect(poolOutputSize(5, 2, 3, 1, true)).toBe(2);
    expect(poolOutputSize(112, 3, 2, 1, false)).toBe(56);
  });

  it('max-pools by hand with -inf padding and first-max indices', () => {
    const x = arr([1, 1, 3, 3], [-1, -2, -3, -4, -5, -6, 7, 7, -9]);
    const { out, indices } = maxPool2dWithIndices(x, { kernelSize: 2, stride: 2, padding: 1 });
    expect(Array.from(out.data)).toEqual([-1, -2, 7, 7]);
    expect(Array.from(indices.data)).toEqual([0, 1, 6, 7]);
    const tie = maxPool2dWithIndices(arr([1, 1, 2, 2], [3, 3, 3, 3]), { kernelSize: 2 });
    expect(Array.from(tie.indices.data)).toEqual([0]);
    // Both windows hold tied maxima; each gradient goes to its window's first one.
    const grad = maxPool2dBackward(arr([1, 1, 2, 3], [5, 1, 5, 0, 5, 0]), arr([1, 1, 1, 2], [1, 10]), { kernelSize: 2, stride: 1 });
    expect(Array.from(grad.data)).toEqual([1, 0, 10, 0, 0, 0]);
    expect(maxPool2d(arr([1, 1, 5, 5]), { kernelSize: 2, ceilMode: true }).shape).toEqual([1, 1, 3, 3]);
    expect(() => maxPool2d(arr([1, 1, 5, 5]), { kernelSize: 2, padding: 2 })).toThrow(/half the kernel/);
  });

  it('average-pools with both divisor rules', () => {
    const x = arr([1, 1, 2, 2], [1, 2, 3, 4]);
    const opts: AvgPool2dOptions = { kernelSize: 2, stride: 2, padding: 1 };
    expect(Array.from(avgPool2d(x, opts).data)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(Array.from(avgPool2d(x, { ...opts, countIncludePad: false }).data)).toEqual([1, 2, 3, 4]);
    // Ceil mode: the last window hangs past the padded input; the divisor only counts the padded extent.
    const y = arr([1, 1, 1, 3], [3, 6, 9]);
    expect(Array.from(avgPool2d(y, { kernelSize: [1, 2], stride: [1, 2], ceilMode: true }).data)).toEqual([4.5, 9]);
    expect(Array.from(avgPool2d(y, { kernelSize: [1, 2], stride: [1, 2], padding: [0, 1], ceilMode: true }).data)).toEqual([1.5, 7.5]);
  });

  it('adaptive-pools with PyTorch bins', () => {
    expect([0, 1, 2].map((i) => adaptiveBin(i, 5, 3))).toEqual([[0, 2], [1, 4], [3, 5]]);
    const x = randArr([2, 3, 5, 4], new Rng(12));
    expectClose(reshape(adaptiveAvgPool2d(x, 1), [2, 3]), mean(x, [2, 3]), 1e-14);
    expectClose(adaptiveAvgPool2d(x, [5, 4]), x, 1e-15);
    const y = adaptiveAvgPool2d(x, [3, 3]);
    expectClose([at(y, 1, 2, 1, 2)], [mean(narrow(narrow(narrow(narrow(x, 0, 1, 1), 1, 2, 1), 2, 1, 3), 3, 2, 2)).data[0]], 1e-14);
  });

  const poolCases: { name: string; opts: AvgPool2dOptions }[] = [
    { name: 'k2 s2', opts: { kernelSize: 2 } },
    { name: 'k3 s2 p1', opts: { kernelSize: 3, stride: 2, padding: 1 } },
    { name: 'k3 s2 ceil', opts: { kernelSize: 3, stride: 2, ceilMode: true } },
    { name: 'k[2,3] s1 p[1,1] exclude pad', opts: { kernelSize: [2, 3], stride: 1, padding: [1, 1], countIncludePad: false } },
  ];
  for (const c of poolCases) {
    it(`pool gradients equal numeric gradients: ${c.name}`, () => {
      const rng = new Rng(13);
      const x = randArr([2, 2, 6, 7], rng);
      const maxOut = maxPool2d(x, c.opts);
      const r1 = randArr(maxOut.shape, rng);
      expectClose(maxPool2dBackward(x, r1, c.opts).data, numericGrad(() => dotWith(maxPool2d(x, c.opts), r1), x.data, 1e-6), 1e-7);
      const avgOut = avgPool2d(x, c.opts);
      const r2 = randArr(avgOut.shape, rng);
      expectClose(avgPool2dBackward(x.shape, r2, c.opts).data, numericGrad(() => dotWith(avgPool2d(x, c.opts), r2), x.data), 1e-9);
    });
  }

  it('adaptive pool gradient equals numeric gradient', () => {
    const rng = new Rng(14);
    const x = randArr([1, 2, 7, 5], rng);
    const r = randArr([1, 2, 3, 4], rng);
    expectClose(adaptiveAvgPool2dBackward(x.shape, r).data, numericGrad(() => dotWith(adaptiveAvgPool2d(x, [3, 4]), r), x.data), 1e-9);
  });
});

describe('batch norm', () => {
  const rng = new Rng(21);
  const x = add(mul(randArr([3, 2, 4, 3], rng), 2), 5);
  const weight = randArr([2], rng, 0.5, 1.5);
  const bias = randArr([2], rng);

  it('normalises by batch statistics and updates running ones (unbiased var)', () => {
    const r = batchNorm2dTrain(x, { eps: 0, runningMean: arr([2], [1, 2]), runningVar: arr([2], [3, 4]), momentum: 0.25 });
    expectClose(mean(r.out, [0, 2, 3]), [0, 0], 1e-12);
    expectClose(variance(r.out, [0, 2, 3], false), [1, 1], 1e-12);
    expectClose(r.mean, mean(x, [0, 2, 3]), 1e-13);
    expectClose(r.var, variance(x, [0, 2, 3], false), 1e-13);
    const unbiased = variance(x, [0, 2, 3], true);
    expectClose(r.runningMean, [0.75 * 1 + 0.25 * r.mean.data[0], 0.75 * 2 + 0.25 * r.mean.data[1]], 1e-14);
    expectClose(r.runningVar, [0.75 * 3 + 0.25 * unbiased.data[0], 0.75 * 4 + 0.25 * unbiased.data[1]], 1e-14);
    const affine = batchNorm2dTrain(x, { weight, bias, eps: 0 }).out;
    expectClose(affine, add(mul(r.out, reshape(weight, [2, 1, 1])), reshape(bias, [2, 1, 1])), 1e-13);
    expect(() => batchNorm2dTrain(arr([1, 2, 1, 1]))).toThrow(/more than 1 value/);
  });

  it('normalises by running statistics in eval mode', () => {
    const rm = arr([2], [4, 6]);
    const rv = arr([2], [1, 3]);
    const y = batchNorm2dEval(x, { weight, bias, runningMean: rm, runningVar: rv, eps: 1e-3 });
    const c = (v: number[]): Arr => arr([2, 1, 1], v);
    const expected = add(mul(div(sub(x, c([4, 6])), c([Math.sqrt(1.001), Math.sqrt(3.001)])), c(Array.from(weight.data))), c(Array.from(bias.data)));
    expectClose(y, expected, 1e-13);
    expect(() => batchNorm2dEval(x, { weight })).toThrow(/required/);
  });

  it('closed-form backward equals numeric gradients', () => {
    const r = randArr(x.shape, rng);
    const g = batchNorm2dBackward(x, r, { weight, eps: 1e-5 });
    const f = (): number => dotWith(batchNorm2dTrain(x, { weight, bias, eps: 1e-5 }).out, r);
    expectClose(g.dInput.data, numericGrad(f, x.data), 1e-7);
    expectClose(g.dWeight.data, numericGrad(f, weight.data), 1e-7);
    expectClose(g.dBias.data, numericGrad(f, bias.data), 1e-7);
  });
});

describe('losses', () => {
  const rng = new Rng(31);

  it('BCE with logits matches the naive formula and stays finite at extremes', () => {
    const x = arr([2, 3], [-2, -0.5, 0, 0.3, 1, 4]);
    const y = arr([2, 3], [0, 1, 1, 0, 0.25, 1]);
    const pw = arr([3], [1, 2, 0.5]);
    const naive = Array.from(x.data, (xi, i) => {
      const s = 1 / (1 + Math.exp(-xi));
      const p = pw.data[i % 3];
      return -(p * y.data[i] * Math.log(s) + (1 - y.data[i]) * Math.log(1 - s));
    });
    expectClose(binaryCrossEntropyWithLogits(x, y, { posWeight: pw, reduction: 'none' }), arr([2, 3], naive), 1e-14);
    expectClose(binaryCrossEntropyWithLogits(x, y, { posWeight: pw, reduction: 'sum' }), [naive.reduce((a, b) => a + b)], 1e-13);
    const w = arr([2, 1], [2, 0.5]);
    const weighted = naive.map((v, i) => v * (i < 3 ? 2 : 0.5));
    expectClose(binaryCrossEntropyWithLogits(x, y, { posWeight: pw, weight: w }), [weighted.reduce((a, b) => a + b) / 6], 1e-14);
    const ext = binaryCrossEntropyWithLogits(arr([2], [-800, 800]), arr([2], [1, 0]), { reduction: 'none' });
    expectClose(ext, [800, 800], 1e-12);
    expect(() => binaryCrossEntropyWithLogits(x, arr([6]))).toThrow(/target shape/);
  });

  const reductions: Reduction[] = ['mean', 'sum', 'none'];
  for (const reduction of reductions) {
    it(`loss gradients equal numeric gradients (${reduction})`, () => {
      const x = randArr([4, 3], rng, -3, 3);
      const y = randArr([4, 3], rng, 0, 1);
      const dOut = reduction === 'none' ? randArr([4, 3], rng) : arr([], [1.7]);
      const scalar = (l: Arr): number => dotWith(l, dOut);
      const bce: BceWithLogitsOptions = { posWeight: arr([3], [3, 1, 0.2]), weight: arr([4, 1], [1, 2, 0.5, 1]), reduction };
      expectClose(binaryCrossEntropyWithLogitsBackward(x, y, bce, dOut).data,
        numericGrad(() => scalar(binaryCrossEntropyWithLogits(x, y, bce)), x.data), 1e-6);
      expectClose(mseLossBackward(x, y, reduction, dOut).data, numericGrad(() => scalar(mseLoss(x, y, reduction)), x.data), 1e-9);
      const target = [2, 0, 1, 2];
      const ceOpts = { weight: arr([3], [0.5, 2, 1]), reduction };
      const ceOut = reduction === 'none' ? randArr([4], rng) : dOut;
      expectClose(crossEntropyBackward(x, target, ceOpts, ceOut).data,
        numericGrad(() => dotWith(crossEntropy(x, target, ceOpts), ceOut), x.data), 1e-6);
    });
  }

  it('cross entropy equals -log softmax at the target, weighted mean by target weights', () => {
    const x = randArr([3, 4], rng, -2, 2);
    const target = [3, 0, 3];
    const p = softmax(x, 1);
    const nll = target.map((t, i) => -Math.log(at(p, i, t)));
    expectClose(crossEntropy(x, target), [(nll[0] + nll[1] + nll[2]) / 3], 1e-14);
    const w = arr([4], [2, 1, 1, 0.5]);
    expectClose(crossEntropy(x, target, { weight: w }), [(0.5 * nll[0] + 2 * nll[1] + 0.5 * nll[2]) / 3], 1e-14);
    expect(() => crossEntropy(x, [0, 4, 1])).toThrow(/class index/);
  });

  it('MSE by hand', () => {
    const x = arr([2], [1, 4]);
    const y = arr([2], [3, 3]);
    expect(mseLoss(x, y).data[0]).toBe(2.5);
    expect(mseLoss(x, y, 'sum').data[0]).toBe(5);
    expect(Array.from(mseLossBackward(x, y).data)).toEqual([-2, 1]);
  });
});

describe('linear', () => {
  it('equals x @ W^T + b and its gradients equal numeric ones', () => {
    const rng = new Rng(41);
    const x = randArr([2, 3, 4], rng);
    const w = randArr([5, 4], rng);
    const b = randArr([5], rng);
    const y = linear(x, w, b);
    expectClose(y, add(matmul(x, transpose(w, 0, 1)), b), 1e-14);
    const r = randArr(y.shape, rng);
    const g = linearBackward(x, w, r);
    const f = (): number => dotWith(linear(x, w, b), r);
    expectClose(g.dInput.data, numericGrad(f, x.data), 1e-9);
    expectClose(g.dWeight.data, numericGrad(f, w.data), 1e-9);
    expectClose(g.dBias.data, numericGrad(f, b.data), 1e-9);
    expect(() => linear(arr([2, 3]), w)).toThrow(/end in 4/);
  });
});

describe('optimisers', () => {
  it('SGD with momentum, dampening, Nesterov, weight decay and maximize by hand', () => {
    const run = (opts: Parameters<typeof sgdStep>[3], grads: number[]): number => {
      const p = [arr([1], [1])];
      const state = sgdState(p);
      for (const g of grads) sgdStep(p, [arr([1], [g])], state, opts);
      return p[0].data[0];
    };
    expect(run({ lr: 0.1 }, [2])).toBeCloseTo(0.8, 15);
    // b1 = 1, b2 = 0.9 + 1 = 1.9: θ = 1 - 0.1 - 0.19.
    expect(run({ lr: 0.1, momentum: 0.9 }, [1, 1])).toBeCloseTo(0.71, 15);
    // Dampening does not apply on the first step: b2 = 0.9 + 0.5.
    expect(run({ lr: 0.1, momentum: 0.9, dampening: 0.5 }, [1, 1])).toBeCloseTo(1 - 0.1 - 0.14, 15);
    // Nesterov: g + μb: step1 1.9, step2 1 + 0.9·1.9 = 2.71.
    expect(run({ lr: 0.1, momentum: 0.9, nesterov: true }, [1, 1])).toBeCloseTo(1 - 0.19 - 0.271, 15);
    // g = 2 + 0.5·1 = 2.5.
    expect(run({ lr: 0.1, weightDecay: 0.5 }, [2])).toBeCloseTo(0.75, 15);
    // torch negates the gradient before decay: g = -2 + 0.5.
    expect(run({ lr: 0.1, weightDecay: 0.5, maximize: true }, [2])).toBeCloseTo(1.15, 15);
    expect(() => run({ lr: 0.1, nesterov: true }, [1])).toThrow(/Nesterov/);
  });

  it('Adam and AdamW first steps by hand', () => {
    const lr = 0.01;
    const eps = 1e-8;
    const theta = [0.5, -1, 2];
    const grad = [0.3, -2, 1e-3];
    const fresh = (): Arr[] => [arr([3], theta)];
    const p = fresh();
    adamStep(p, [arr([3], grad)], adamState(p), { lr, eps });
    // m̂ = g and v̂ = g² after one step, so θ -= lr·g / (|g| + eps).
    expectClose(p[0], arr([3], theta.map((t, i) => t - (lr * grad[i]) / (Math.abs(grad[i]) + eps))), 1e-15);

    const q = fresh();
    adamStep(q, [arr([3], grad)], adamState(q), { lr, eps, weightDecay: 0.1 });
    expectClose(q[0], arr([3], theta.map((t, i) => {
      const g = grad[i] + 0.1 * t;
      return t - (lr * g) / (Math.abs(g) + eps);
    })), 1e-15);

    const r = fresh();
    adamwStep(r, [arr([3], grad)], adamState(r), { lr, eps, weightDecay: 0.1 });
    expectClose(r[0], arr([3], theta.map((t, i) => t * (1 - lr * 0.1) - (lr * grad[i]) / (Math.abs(grad[i]) + eps))), 1e-15);
  });

  it('Adam second step and AMSGrad by hand', () => {
    const [b1, b2, lr, eps] = [0.9, 0.999, 0.1, 1e-8];
    const steps = (amsgrad: boolean): number => {
      const p = [arr([1], [0])];
      const state = adamState(p);
      for (const g of [1, 0.01]) adamStep(p, [arr([1], [g])], state, { lr, betas: [b1, b2], eps, amsgrad });
      expect(state.step).toBe(2);
      return p[0].data[0];
    };
    const step1 = lr; // θ1 = 0 - lr·1/(1 + eps) ≈ -0.1
    const m2 = b1 * (1 - b1) * 1 + (1 - b1) * 0.01;
    const v2 = b2 * (1 - b2) * 1 + (1 - b2) * 0.01 ** 2;
    const vMax = Math.max(v2, (1 - b2) * 1);
    const theta = (v: number): number => -(step1 / (1 + eps)) - (lr / (1 - b1 ** 2)) * (m2 / (Math.sqrt(v) / Math.sqrt(1 - b2 ** 2) + eps));
    expect(steps(false)).toBeCloseTo(theta(v2), 14);
    expect(vMax).toBeGreaterThan(v2); // the case where AMSGrad differs
    expect(steps(true)).toBeCloseTo(theta(vMax), 14);
  });
});

describe('numericGrad', () => {
  it('differentiates a smooth function and restores its input', () => {
    const x = Float64Array.from([0.5, -1.5, 2]);
    const before = Float64Array.from(x);
    const g = numericGrad((v) => v[0] ** 3 + Math.sin(v[1]) * v[2], x);
    expectClose(g, [3 * 0.25, Math.cos(-1.5) * 2, Math.sin(-1.5)], 1e-6);
    expect(x).toEqual(before);
    expect(() => numericGrad(() => 0, x, 0)).toThrow(/eps/);
  });
});
