import { describe, it, expect, beforeAll } from 'vitest';
import { init, tensor, mul, sum, type Tensor } from '@lib/nn';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d } from '../src/nn/functional/index.js';
import {
  Rng, arr, randnArr, type Arr,
  maxPool2d as refMaxPool, maxPool2dBackward, avgPool2d as refAvgPool, avgPool2dBackward,
  adaptiveAvgPool2d as refAdaptive, adaptiveAvgPool2dBackward, poolOutputSize,
} from './reference/index.js';
import { expectArrClose, fdGrad, toArr as host, toTensor as gpu } from './gradcheck.js';
const expectClose = expectArrClose;




/** Forward and input gradient (for upstream gradient `dOut`) of a pooling op on the GPU. */
async function runPool(op: (x: Tensor) => Tensor, x: Arr, rng: Rng): Promise<{ out: Arr; dOut: Arr; dx: Arr }> {
  const xt = gpu(x, true);
  const y = op(xt);
  const dOut = randnArr(y.shape, rng);
  y.backward(gpu(dOut));
  const [out, dx] = await Promise.all([host(y), host(xt.grad!)]);
  return { out, dOut, dx };
}

interface PoolCase {
  shape: number[];
  k: number | [number, number];
  s?: number | [number, number];
  p?: number | [number, number];
  ceil: boolean;
}

/** A seeded table: batch 1 and 3, odd channel counts, odd/prime sizes, kernel 2/3, stride 1/2, padding, ceil mode both ways. */
function poolCases(seed: number, count: number): PoolCase[] {
  const rng = new Rng(seed);
  const pick = <T>(xs: T[]): T => xs[rng.int(xs.length)];
  const cases: PoolCase[] = [
    { shape: [1, 3, 7, 7], k: 3, s: 2, p: 1, ceil: true },
    { shape: [3, 5, 6, 5], k: 2, ceil: false },
    { shape: [1, 3, 5, 11], k: [3, 2], s: [1, 2], p: [1, 0], ceil: true },
  ];
  while (cases.length < count) {
    const k = pick([2, 3]);
    cases.push({
      shape: [pick([1, 3]), pick([1, 3, 5]), pick([5, 7, 8, 11]), pick([5, 7, 13])],
      k,
      s: pick([1, 2]),
      p: rng.int(Math.floor(k / 2) + 1),
      ceil: rng.next() < 0.5,
    });
  }
  return cases;
}

describe('pooling', () => {
  beforeAll(async () => {
    await init();
  });

  it('maxPool2d forward and backward match the reference over a table of configurations', async () => {
    const rng = new Rng(1);
    const runs = poolCases(101, 10).map((c) => {
      const x = randnArr(c.shape, rng);
      return { c, x, got: runPool((xt) => maxPool2d(xt, c.k, { stride: c.s, padding: c.p, ceilMode: c.ceil }), x, rng) };
    });
    for (const { c, x, got } of runs) {
      const opts = { kernelSize: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil };
      const what = `maxPool2d ${JSON.stringify(c)}`;
      const { out, dOut, dx } = await got;
      expectClose(out, refMaxPool(x, opts), `${what} out`);
      expectClose(dx, maxPool2dBackward(x, dOut, opts), `${what} dx`);
    }
  });

  it('maxPool2d with dilation matches a direct evaluation', async () => {
    const rng = new Rng(2);
    const x = randnArr([2, 3, 9, 8], rng);
    const [kh, kw, sh, sw, ph, pw, dh, dw] = [3, 2, 2, 1, 1, 1, 2, 3];
    const oh = Math.floor((9 + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
    const ow = Math.floor((8 + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
    const want = arr([2, 3, oh, ow]);
    const dxWant = arr(x.shape);
    const got = await runPool((xt) => maxPool2d(xt, [kh, kw], { stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw] }), x, rng);
    for (let plane = 0; plane < 6; plane++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let best = -Infinity;
          let at = -1;
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const iy = oy * sh - ph + ky * dh;
              const ix = ox * sw - pw + kx * dw;
              if (iy < 0 || iy >= 9 || ix < 0 || ix >= 8) continue;
              const j = plane * 72 + iy * 8 + ix;
              if (x.data[j] > best) [best, at] = [x.data[j], j];
            }
          }
          const o = (plane * oh + oy) * ow + ox;
          want.data[o] = best;
          dxWant.data[at] += got.dOut.data[o];
        }
      }
    }
    expectClose(got.out, want, 'dilated maxPool2d out');
    expectClose(got.dx, dxWant, 'dilated maxPool2d dx');
  });

  it('avgPool2d forward and backward match the reference, with and without countIncludePad', async () => {
    const rng = new Rng(3);
    const runs = poolCases(202, 10).flatMap((c) =>
      [true, false].map((countIncludePad) => {
        const opts = { kernelSize: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil, countIncludePad };
        const x = randnArr(c.shape, rng);
        return { c, opts, x, got: runPool((xt) => avgPool2d(xt, c.k, opts), x, rng) };
      }),
    );
    for (const { c, opts, x, got } of runs) {
      const what = `avgPool2d ${JSON.stringify(opts)} [${c.shape}]`;
      const { out, dOut, dx } = await got;
      expectClose(out, refAvgPool(x, opts), `${what} out`);
      expectClose(dx, avgPool2dBackward(x.shape, dOut, opts), `${what} dx`);
    }
  });

  it('ceil mode follows PyTorch: the last window must start inside the input or left padding', () => {
    // 6 wide, kernel 2, stride 2, padding 1: ceil((6+2-2)/2)+1 = 4, and window 3 starts at 5 < 6+1: kept.
    // 5 wide, kernel 3, stride 2, padding 1: ceil(4/2)+1 = 3, window 2 starts at 3 < 5+1: kept.
    // 4 wide, kernel 2, stride 3: ceil(2/3)+1 = 2, window 1 starts at 3 < 4: kept; 3 wide, kernel 2, stride 2, padding 1 gives 3 then drops to 2.
    for (const [w, k, s, p] of [[6, 2, 2, 1], [5, 3, 2, 1], [4, 2, 3, 0], [3, 2, 2, 1]]) {
      const y = maxPool2d(tensor(new Float32Array(w * w), [1, 1, w, w]), k, { stride: s, padding: p, ceilMode: true });
      expect(y.shape.slice(2), `w=${w} k=${k} s=${s} p=${p}`).toEqual([poolOutputSize(w, k, s, p, true), poolOutputSize(w, k, s, p, true)]);
    }
  });

  it('adaptiveAvgPool2d forward and backward match the reference for output sizes 1, 2, 3, 5 on 7 and 10', async () => {
    const rng = new Rng(4);
    const cases: [number[], number | [number, number]][] = [];
    for (const size of [7, 10]) for (const o of [1, 2, 3, 5]) cases.push([[rng.int(2) * 2 + 1, 3, size, size], o]);
    cases.push([[3, 5, 7, 10], [3, 5]], [[1, 3, 10, 7], [5, 2]], [[2, 3, 3, 4], [5, 7]], [[3, 5, 4, 4], 1], [[2, 3, 8], [3, 3]]);
    const runs = cases.map(([shape, o]) => {
      const x = randnArr(shape, rng);
      return { shape, o, x, pending: runPool((xt) => adaptiveAvgPool2d(xt, o), x, rng) };
    });
    for (const { shape, o, x, pending } of runs) {
      const what = `adaptiveAvgPool2d [${shape}] -> ${JSON.stringify(o)}`;
      const got = await pending;
      const x4 = shape.length === 4 ? x : arr([1, ...shape], x.data);
      const dOut4 = shape.length === 4 ? got.dOut : arr([1, ...got.dOut.shape], got.dOut.data);
      const want = refAdaptive(x4, o);
      expectClose(arr(want.shape, got.out.data), want, `${what} out`);
      expectClose(arr(x4.shape, got.dx.data), adaptiveAvgPool2dBackward(x4.shape, dOut4), `${what} dx`);
    }
  });

  it('gradients agree with finite differences', async () => {
    const rng = new Rng(5);
    // Well-separated values keep max pooling away from its kinks.
    const x = arr([1, 2, 5, 5], Array.from({ length: 50 }, (_, i) => ((i * 37) % 50) * 0.1));
    const ops: [string, (t: Tensor) => Tensor][] = [
      ['maxPool2d', (t) => maxPool2d(t, 3, { stride: 2, padding: 1, ceilMode: true })],
      ['avgPool2d', (t) => avgPool2d(t, 2, { stride: 1, padding: 1, countIncludePad: false })],
      ['adaptiveAvgPool2d', (t) => adaptiveAvgPool2d(t, 3)],
    ];
    for (const [name, op] of ops) {
      const r = gpu(randnArr(op(gpu(x)).shape, rng));
      const loss = (t: Tensor) => sum(mul(op(t), r));
      const numeric = await fdGrad(loss, x);
      const xt = gpu(x, true);
      loss(xt).backward();
      expectClose(await host(xt.grad!), numeric, `${name} dx vs finite differences`, 5e-3, 2e-2);
    }
  });

  it('rejects bad arguments naming the op and shape', () => {
    const x = tensor(new Float32Array(2 * 3 * 5 * 5), [2, 3, 5, 5]);
    expect(() => maxPool2d(x, 2, { padding: 2 })).toThrow(/maxPool2d: padding \[2, 2\] must be at most half the kernel size \[2, 2\]/);
    expect(() => avgPool2d(x, 7)).toThrow(/avgPool2d: input \[2,3,5,5\] is too small for kernel \[7, 7\]/);
    expect(() => maxPool2d(x, 3, { dilation: 3 })).toThrow(/too small/);
    expect(() => maxPool2d(x, 0)).toThrow(/kernelSize must be integers >= 1/);
    expect(() => avgPool2d(x, 2, { stride: 0 })).toThrow(/stride must be integers >= 1/);
    expect(() => adaptiveAvgPool2d(tensor([1, 2, 3]), 1)).toThrow(/adaptiveAvgPool2d: input must be \[N, C, H, W\] or \[C, H, W\], got \[3\]/);
    expect(() => adaptiveAvgPool2d(x, 0)).toThrow(/outputSize/);
  });
});
