/** Every tensor op of the core against the independent float64 reference, forward and backward. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as nn from '@lib/nn';
import { init, type Tensor } from '@lib/nn';
import * as R from './reference/index.js';
import { expectClose, gradcheck, toTensor } from './gradcheck.js';

const rng = new R.Rng(1234);
const randShape = (nd: number, max = 6) => Array.from({ length: nd }, () => 1 + rng.int(max));
/** A shape that broadcasts against `s`: some dims set to 1, some leading dims dropped. */
const broadcastPartner = (s: number[]) => s.slice(rng.int(s.length)).map((d) => (rng.next() < 0.4 ? 1 : d));
const positive = (shape: number[]) => R.randArr(shape, rng, 0.5, 2);
// inputs kept away from kinks (0 for relu/abs, ties for max/min), where finite differences are meaningless
/** Distinct values at least 0.01 apart, so finite differences never cross a tie (max/min). */
const distinct = (shape: number[]) => {
  const n = R.numel(shape);
  const perm = Array.from({ length: n }, (_, i) => i).sort(() => rng.next() - 0.5);
  return R.arr(shape, perm.map((p) => (p - n / 2) * 0.01));
};
const awayFromZero = (shape: number[]) => R.map(R.randArr(shape, rng, 0.2, 1.5), (x) => (rng.next() < 0.5 ? -x : x));

beforeAll(async () => {
  await init();
});

describe('element-wise binary ops with broadcasting', () => {
  const cases: [string, (a: Tensor, b: Tensor) => Tensor, (a: R.Arr, b: R.Arr) => R.Arr, (s: number[]) => R.Arr][] = [
    ['add', nn.add, R.add, (s) => R.randArr(s, rng)],
    ['sub', nn.sub, R.sub, (s) => R.randArr(s, rng)],
    ['mul', nn.mul, R.mul, (s) => R.randArr(s, rng)],
    ['div', nn.div, R.div, positive],
    ['pow', nn.pow, R.pow, positive],
    ['maximum', nn.maximum, R.maximum, distinct],
    ['minimum', nn.minimum, R.minimum, distinct],
  ];
  for (const [name, gpu, ref, gen] of cases) {
    it(`${name} forward and backward on random broadcast shapes`, async () => {
      for (let trial = 0; trial < 3; trial++) {
        const sa = randShape(1 + rng.int(4));
        const sb = broadcastPartner(sa);
        const [a, b] = trial === 2 ? [gen(sb), gen(sa)] : [gen(sa), gen(sb)];
        await expectClose(gpu(toTensor(a), toTensor(b)), ref(a, b), 1e-5, 1e-4, name);
        await gradcheck(gpu, ref, [a, b]);
      }
    });
  }

  it('comparisons and where', async () => {
    const a = R.randArr([3, 1, 5], rng);
    const b = R.randArr([4, 5], rng);
    b.data[0] = a.data[0]; // one exact tie for eq/ge/le
    for (const [g, r] of [[nn.gt, R.gt], [nn.ge, R.ge], [nn.lt, R.lt], [nn.le, R.le], [nn.eq, R.eq]] as const) {
      await expectClose(g(toTensor(a), toTensor(b)), r(a, b), 0, 0);
    }
    const c = R.gt(R.randArr([4, 1], rng), 0);
    await expectClose(nn.where(toTensor(c), toTensor(a), toTensor(b)), R.where(c, a, b));
    await gradcheck((x, y) => nn.where(toTensor(c), x, y), (x, y) => R.where(c, x, y), [a, b]);
  });

  it('number operands on either side', async () => {
    const a = R.randArr([7, 3], rng);
    await expectClose(nn.add(toTensor(a), 2.5), R.add(a, 2.5));
    await expectClose(nn.sub(1, toTensor(a)), R.sub(1, a));
    await expectClose(nn.div(toTensor(a), 4), R.div(a, 4));
    const p = positive([5]);
    await expectClose(nn.pow(toTensor(p), 3), R.pow(p, 3), 1e-4, 1e-3);
    await gradcheck((x) => nn.mul(nn.sub(2, x), 3), (x) => R.mul(R.sub(2, x), 3), [a]);
  });

  it('pow of a negative base with an integer exponent', async () => {
    const a = R.arr([4], [-2, -1.5, 0.5, 3]);
    await expectClose(nn.pow(toTensor(a), 3), R.pow(a, 3), 1e-5, 1e-5);
    await expectClose(nn.pow(toTensor(a), 2), R.pow(a, 2), 1e-5, 1e-5);
    await gradcheck((x) => nn.pow(x, 3), (x) => R.pow(x, 3), [a]);
  });

  it('throws on shapes that do not broadcast, naming both', () => {
    expect(() => nn.add(nn.zeros([2, 3]), nn.zeros([4, 3]))).toThrow(/add: shapes \[2,3\] and \[4,3\] cannot be broadcast/);
  });
});

describe('element-wise unary ops', () => {
  const cases: [string, (a: Tensor) => Tensor, (a: R.Arr) => R.Arr, (s: number[]) => R.Arr][] = [
    ['neg', nn.neg, R.neg, (s) => R.randArr(s, rng)],
    ['exp', nn.exp, R.exp, (s) => R.randArr(s, rng)],
    ['log', nn.log, R.log, positive],
    ['sqrt', nn.sqrt, R.sqrt, positive],
    ['rsqrt', nn.rsqrt, R.rsqrt, positive],
    ['abs', nn.abs, R.abs, awayFromZero],
    ['relu', nn.relu, R.relu, awayFromZero],
    ['sigmoid', nn.sigmoid, R.sigmoid, (s) => R.randArr(s, rng, -4, 4)],
    ['tanh', nn.tanh, R.tanh, (s) => R.randArr(s, rng, -3, 3)],
    ['silu', nn.silu, R.silu, (s) => R.randArr(s, rng, -4, 4)],
    ['clamp', (x) => nn.clamp(x, -0.5, 0.7), (x) => R.clamp(x, -0.5, 0.7), (s) => R.map(R.randArr(s, rng), (v) => (Math.abs(v + 0.5) < 0.02 || Math.abs(v - 0.7) < 0.02 ? 0 : v))],
  ];
  for (const [name, gpu, ref, gen] of cases) {
    it(`${name} forward and backward (vec4 and scalar paths)`, async () => {
      for (const shape of [[3, 5, 7], [4, 8], [1]]) {
        const a = gen(shape);
        await expectClose(gpu(toTensor(a)), ref(a), 1e-5, 1e-4, name);
        await gradcheck(gpu, ref, [a]);
      }
    });
  }

  it('stays finite at extreme inputs', async () => {
    const a = R.arr([4], [-1000, -90, 90, 1000]);
    await expectClose(nn.sigmoid(toTensor(a)), R.sigmoid(a));
    await expectClose(nn.tanh(toTensor(a)), R.tanh(a));
    await expectClose(nn.silu(toTensor(a)), R.silu(a), 1e-3);
  });
});

describe('reductions', () => {
  const dimSets = (nd: number) => {
    const all = Array.from({ length: nd }, (_, i) => i);
    return [undefined, [rng.int(nd)], all.filter(() => rng.next() < 0.5), [nd - 1], [-1]];
  };
  for (const [name, gpu, ref] of [
    ['sum', nn.sum, R.sum],
    ['mean', nn.mean, R.mean],
    ['max', nn.max, R.max],
    ['min', nn.min, R.min],
  ] as const) {
    it(`${name} over random dim sets, with and without keepdim`, async () => {
      for (const nd of [1, 2, 3, 4]) {
        const shape = randShape(nd, 7);
        const a = name === 'max' || name === 'min' ? distinct(shape) : R.randArr(shape, rng);
        for (const dims of dimSets(nd)) {
          if (dims && !dims.length) continue;
          for (const keepdim of [false, true]) {
            await expectClose(gpu(toTensor(a), dims, keepdim), ref(a, dims, keepdim), 1e-5, 1e-4, `${name} dims ${dims}`);
          }
          await gradcheck((x) => gpu(x, dims, false), (x) => ref(x, dims, false), [a]);
        }
      }
    });
  }

  it('long reductions use the two-pass split and stay accurate', async () => {
    const a = R.randArr([3, 20000], rng);
    await expectClose(nn.sum(toTensor(a), 1), R.sum(a, 1), 1e-3, 1e-4);
    await expectClose(nn.max(toTensor(a), 1), R.max(a, 1));
    const b = R.randArr([5, 3, 40, 40], rng);
    await expectClose(nn.mean(toTensor(b), [0, 2, 3]), R.mean(b, [0, 2, 3]), 1e-5, 1e-4);
    await expectClose(nn.sum(toTensor(b)), R.sum(b), 1e-2, 1e-4);
  });

  it('variance (unbiased and biased) and its gradient', async () => {
    const a = R.randArr([4, 5, 3], rng);
    await expectClose(nn.variance(toTensor(a), [0, 2]), R.variance(a, [0, 2], true));
    await expectClose(nn.variance(toTensor(a), 1, { unbiased: false, keepdim: true }), R.variance(a, 1, false, true));
    await gradcheck((x) => nn.variance(x, [1]), (x) => R.variance(x, [1]), [a]);
  });

  it('argmax / argmin', async () => {
    const a = R.randArr([4, 6, 5], rng);
    for (const dim of [0, 1, 2]) await expectClose(nn.argmax(toTensor(a), dim), R.argmax(a, dim), 0, 0);
    const flat = R.reshape(a, [a.data.length]);
    await expectClose(nn.argmax(toTensor(a)), R.argmax(flat, 0), 0, 0);
    await expectClose(nn.argmin(toTensor(a), 1), R.argmax(R.neg(a), 1), 0, 0);
  });

  it('softmax and logSoftmax are stable and differentiable', async () => {
    const a = R.randArr([3, 4, 5], rng, -3, 3);
    for (const dim of [0, 1, -1]) {
      await expectClose(nn.softmax(toTensor(a), dim), R.softmax(a, dim));
      await expectClose(nn.logSoftmax(toTensor(a), dim), R.logSoftmax(a, dim));
      await gradcheck((x) => nn.softmax(x, dim), (x) => R.softmax(x, dim), [a]);
      await gradcheck((x) => nn.logSoftmax(x, dim), (x) => R.logSoftmax(x, dim), [a]);
    }
    const big = R.arr([2, 3], [1000, 1001, 1002, -1000, 0, 1000]);
    await expectClose(nn.softmax(toTensor(big), 1), R.softmax(big, 1));
    await expectClose(nn.logSoftmax(toTensor(big), 1), R.logSoftmax(big, 1), 1e-3);
  });
});

describe('matmul', () => {
  it('2-D, 1-D and batched with broadcasting, forward and backward', async () => {
    const cases: [number[], number[]][] = [
      [[5, 7], [7, 3]],
      [[1, 9], [9, 1]],
      [[33, 17], [17, 35]],
      [[7], [7, 4]],
      [[3, 6], [6]],
      [[6], [6]],
      [[2, 3, 4, 5], [5, 6]],
      [[4, 5], [3, 5, 2]],
      [[2, 1, 3, 4], [5, 4, 3]],
    ];
    for (const [sa, sb] of cases) {
      const a = R.randArr(sa, rng);
      const b = R.randArr(sb, rng);
      await expectClose(nn.matmul(toTensor(a), toTensor(b)), R.matmul(a, b), 1e-4, 1e-4, `matmul [${sa}]x[${sb}]`);
      await gradcheck(nn.matmul, R.matmul, [a, b]);
    }
  });

  it('transposed operands are read in place by mm', async () => {
    const a = R.randArr([6, 4], rng);
    const b = R.randArr([5, 6], rng);
    const ref = R.matmul(R.transpose(a, 0, 1), R.transpose(b, 0, 1));
    await expectClose(nn.mm(toTensor(a), toTensor(b), true, true), ref, 1e-4, 1e-4);
  });

  it('names both shapes on a mismatch', () => {
    expect(() => nn.matmul(nn.zeros([2, 3]), nn.zeros([4, 5]))).toThrow(/matmul: shapes \[2,3\] and \[4,5\] are incompatible/);
  });
});

describe('shape and movement ops', () => {
  it('reshape / flatten / squeeze / unsqueeze share values and route gradients', async () => {
    const a = R.randArr([2, 3, 4], rng);
    await expectClose(nn.reshape(toTensor(a), [4, -1]), R.reshape(a, [4, 6]));
    await expectClose(nn.flatten(toTensor(a), 1), R.reshape(a, [2, 12]));
    await expectClose(nn.unsqueeze(toTensor(a), 1), R.reshape(a, [2, 1, 3, 4]));
    await expectClose(nn.squeeze(nn.unsqueeze(toTensor(a), -1)), a);
    await gradcheck((x) => nn.reshape(x, [6, 4]).mul(x.reshape(6, 4)), (x) => R.mul(R.reshape(x, [6, 4]), R.reshape(x, [6, 4])), [a]);
    expect(() => nn.reshape(toTensor(a), [5, 5])).toThrow(/cannot reshape tensor of shape \[2,3,4\]/);
  });

  it('permute / transpose / expand', async () => {
    const a = R.randArr([2, 3, 4, 5], rng);
    for (const dims of [[3, 1, 0, 2], [0, 2, 1, 3], [1, 0, 3, 2]]) {
      await expectClose(nn.permute(toTensor(a), dims), R.permute(a, dims));
      await gradcheck((x) => nn.permute(x, dims), (x) => R.permute(x, dims), [a]);
    }
    await expectClose(nn.transpose(toTensor(a), 1, -1), R.transpose(a, 1, 3));
    const b = R.randArr([3, 1, 5], rng);
    await expectClose(nn.expand(toTensor(b), [2, 3, 4, 5]), R.expand(b, [2, 3, 4, 5]));
    await gradcheck((x) => nn.expand(x, [2, 3, 4, 5]), (x) => R.expand(x, [2, 3, 4, 5]), [b]);
  });

  it('slice / narrow with steps and negative bounds', async () => {
    const a = R.randArr([5, 7, 3], rng);
    const cases: [number, number, number | undefined, number][] = [[1, 2, 6, 1], [1, -4, undefined, 2], [0, 0, 5, 3], [2, 1, 2, 1]];
    for (const [dim, s, e, step] of cases) {
      await expectClose(nn.slice(toTensor(a), dim, s, e, step), R.slice(a, dim, s, e ?? Infinity, step));
      await gradcheck((x) => nn.slice(x, dim, s, e, step), (x) => R.slice(x, dim, s, e ?? Infinity, step), [a]);
    }
    await expectClose(nn.narrow(toTensor(a), 1, 2, 3), R.narrow(a, 1, 2, 3));
    expect(() => nn.narrow(toTensor(a), 1, 5, 3)).toThrow(/narrow: range/);
  });

  it('cat / stack', async () => {
    const xs = [R.randArr([2, 3, 4], rng), R.randArr([2, 1, 4], rng), R.randArr([2, 5, 4], rng)];
    await expectClose(nn.cat(xs.map((x) => toTensor(x)), 1), R.cat(xs, 1));
    await gradcheck((a, b, c) => nn.cat([a, b, c], 1), (a, b, c) => R.cat([a, b, c], 1), xs);
    const ys = [R.randArr([3, 4], rng), R.randArr([3, 4], rng)];
    for (const dim of [0, 1, 2]) await expectClose(nn.stack(ys.map((y) => toTensor(y)), dim), R.stack(ys, dim));
    expect(() => nn.cat([nn.zeros([2, 3]), nn.zeros([3, 3])], 1)).toThrow(/cat: shapes \[2,3\], \[3,3\] differ outside dim 1/);
  });

  it('pad with positive, negative (crop) and asymmetric pads', async () => {
    const a = R.randArr([2, 3, 5, 4], rng);
    for (const pads of [[1, 2], [0, 1, 2, 0], [-1, 2, 1, -2], [1, 1, 1, 1, 1, 0]]) {
      await expectClose(nn.pad(toTensor(a), pads, 0.5), R.pad(a, pads, 0.5));
      await gradcheck((x) => nn.pad(x, pads), (x) => R.pad(x, pads), [a]);
    }
  });
});

describe('creation', () => {
  it('tensor from nested arrays and typed arrays; errors on ragged or wrong sizes', async () => {
    expect(await nn.tensor([[1, 2], [3, 4]]).toArray()).toEqual([[1, 2], [3, 4]]);
    expect(await nn.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]).toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(await nn.tensor(3).item()).toBe(3);
    expect(() => nn.tensor([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => nn.tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2,2\]/);
    await expect(nn.tensor([1, 2]).item()).rejects.toThrow(/item\(\): tensor has 2 elements/);
  });

  it('zeros / ones / full / arange / *Like', async () => {
    expect(Array.from(await nn.full([2, 2], 3.5).data())).toEqual([3.5, 3.5, 3.5, 3.5]);
    expect(Array.from(await nn.arange(5).data())).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(await nn.arange(1, 2, 0.25).data())).toEqual([1, 1.25, 1.5, 1.75]);
    expect(Array.from(await nn.onesLike(nn.zeros([3])).data())).toEqual([1, 1, 1]);
  });

  it('rand / randn are seeded, reproducible and have the right moments', async () => {
    nn.manualSeed(42);
    const a = await nn.randn([100000]).data();
    nn.manualSeed(42);
    const b = await nn.randn([100000]).data();
    expect(Array.from(a.subarray(0, 50))).toEqual(Array.from(b.subarray(0, 50)));
    const m = a.reduce((s, v) => s + v, 0) / a.length;
    const v = a.reduce((s, x) => s + (x - m) ** 2, 0) / a.length;
    expect(Math.abs(m)).toBeLessThan(0.02);
    expect(Math.abs(v - 1)).toBeLessThan(0.03);
    const u = await nn.rand([100000], 2, 4).data();
    expect(Math.min(...u)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...u)).toBeLessThan(4);
    expect(Math.abs(u.reduce((s, x) => s + x, 0) / u.length - 3)).toBeLessThan(0.02);
    const c = await nn.randn([1000]).data();
    expect(Array.from(c.subarray(0, 5))).not.toEqual(Array.from(a.subarray(0, 5)));
  });
});

describe('large dispatches', () => {
  it('folds more than 65,535 workgroups into a 2-D grid', async () => {
    const n = 65536 * 64 + 123; // one thread per element, 64 per workgroup
    const x = nn.arange(n);
    const y = nn.add(x, 1);
    const d = await y.data();
    expect(d[0]).toBe(1);
    expect(d[n - 1]).toBe(n);
    expect(d[4194303]).toBe(4194304);
    expect(await nn.sum(nn.sub(y, x)).item()).toBe(n);
  });
});
