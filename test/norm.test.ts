import { describe, it, expect, beforeAll } from 'vitest';
import { init, tensor, tidy, mul, sum, type Tensor } from '@lib/nn';
import { batchNorm, batchNormStats } from '../src/nn/functional/index.js';
import {
  Rng, arr, randArr, randnArr, type Arr,
  batchNorm2dTrain, batchNorm2dEval, batchNorm2dBackward,
} from './reference/index.js';
import { expectArrClose, fdGrad, toArr as host, toTensor as gpu } from './gradcheck.js';
const expectClose = (got: Arr, want: Arr, what: string, atol = 1e-4, rtol = 1e-3) => expectArrClose(got, want, what, atol, rtol);

const as4d = (a: Arr): Arr => (a.shape.length === 4 ? a : arr([...a.shape, ...Array(4 - a.shape.length).fill(1)], a.data));


// Shapes: batch 1 and 3, channel counts not a multiple of 4, odd spatial sizes, an [N, C] input,
// HW divisible by 4 (vector loads), and enough values per channel to split the reduction into parts.
const CONFIGS: { shape: number[]; affine: boolean }[] = [
  { shape: [1, 3, 5, 5], affine: true },
  { shape: [3, 5, 7, 7], affine: true },
  { shape: [3, 6, 4, 4], affine: false },
  { shape: [2, 3, 16, 16], affine: true },
  { shape: [7, 5], affine: true },
  { shape: [3, 7, 3], affine: true },
];

describe('batchNorm', () => {
  beforeAll(async () => {
    await init();
  });

  it('training forward, running statistics and backward match the reference', async () => {
    const rng = new Rng(11);
    for (const { shape, affine } of CONFIGS) {
      const c = shape[1];
      const x = randnArr(shape, rng);
      for (let i = 0; i < x.data.length; i++) x.data[i] = 3 * x.data[i] + 0.5 * (i % 5);
      const weight = affine ? randArr([c], rng, 0.5, 1.5) : undefined;
      const bias = affine ? randArr([c], rng) : undefined;
      const runningMean = randArr([c], rng);
      const runningVar = randArr([c], rng, 0.5, 2);
      const dOut = randnArr(shape, rng);
      const ref = batchNorm2dTrain(as4d(x), { weight, bias, runningMean, runningVar, momentum: 0.2, eps: 1e-3 });
      const refGrad = batchNorm2dBackward(as4d(x), as4d(dOut), { weight, eps: 1e-3 });

      const xt = gpu(x, true);
      const wt = weight ? gpu(weight, true) : null;
      const bt = bias ? gpu(bias, true) : null;
      const rm = gpu(runningMean);
      const rv = gpu(runningVar);
      const out = batchNorm(xt, rm, rv, wt, bt, { training: true, momentum: 0.2, eps: 1e-3 });
      const what = `[${shape}]`;
      expectClose(as4d(await host(out)), ref.out, `${what} out`);
      expectClose(await host(rm), ref.runningMean, `${what} runningMean`, 1e-5, 1e-4);
      expectClose(await host(rv), ref.runningVar, `${what} runningVar`, 1e-5, 1e-4);
      out.backward(gpu(dOut));
      expectClose(as4d(await host(xt.grad!)), refGrad.dInput, `${what} dx`);
      if (wt && bt) {
        expectClose(await host(wt.grad!), refGrad.dWeight, `${what} dWeight`);
        expectClose(await host(bt.grad!), refGrad.dBias, `${what} dBias`);
      }
    }
  });

  it('updates running statistics over several steps and then normalises with them in eval mode', async () => {
    const rng = new Rng(5);
    const shape = [3, 5, 7, 7];
    const weight = randArr([5], rng, 0.5, 1.5);
    const bias = randArr([5], rng);
    let refMean = arr([5]);
    let refVar = arr([5], new Float64Array(5).fill(1));
    const rm = tensor(new Float32Array(5));
    const rv = tensor(new Float32Array(5).fill(1));
    const wt = gpu(weight);
    const bt = gpu(bias);
    for (let step = 0; step < 4; step++) {
      const x = randnArr(shape, rng);
      for (let i = 0; i < x.data.length; i++) x.data[i] = x.data[i] * (1 + step) + step;
      const ref = batchNorm2dTrain(x, { weight, bias, runningMean: refMean, runningVar: refVar });
      refMean = ref.runningMean;
      refVar = ref.runningVar;
      tidy(() => {
        batchNorm(gpu(x), rm, rv, wt, bt, { training: true });
      });
    }
    expectClose(await host(rm), refMean, 'runningMean after 4 steps', 1e-5, 1e-4);
    expectClose(await host(rv), refVar, 'runningVar after 4 steps', 1e-5, 1e-4);

    const x = randnArr(shape, rng);
    const evalOut = batchNorm(gpu(x), rm, rv, wt, bt, { training: false });
    expectClose(await host(evalOut), batchNorm2dEval(x, { weight, bias, runningMean: refMean, runningVar: refVar }), 'eval out');
    // Eval mode leaves the running statistics alone.
    expectClose(await host(rm), refMean, 'runningMean after eval', 1e-5, 1e-4);
  });

  it('eval-mode gradients are the affine ones (checked by hand and by finite differences)', async () => {
    const rng = new Rng(8);
    const shape = [2, 3, 3, 5];
    const x = randnArr(shape, rng);
    const g = randnArr(shape, rng);
    const weight = randArr([3], rng, 0.5, 1.5);
    const rmA = randArr([3], rng);
    const rvA = randArr([3], rng, 0.5, 2);
    const eps = 1e-5;
    const xt = gpu(x, true);
    const wt = gpu(weight, true);
    const bt = tensor([0.1, -0.2, 0.3], undefined, { requiresGrad: true });
    batchNorm(xt, gpu(rmA), gpu(rvA), wt, bt, { training: false }).backward(gpu(g));
    const dx = arr(shape);
    const dw = arr([3]);
    const db = arr([3]);
    for (let i = 0; i < x.data.length; i++) {
      const c = Math.floor(i / 15) % 3;
      const inv = 1 / Math.sqrt(rvA.data[c] + eps);
      dx.data[i] = g.data[i] * weight.data[c] * inv;
      dw.data[c] += g.data[i] * (x.data[i] - rmA.data[c]) * inv;
      db.data[c] += g.data[i];
    }
    expectClose(await host(xt.grad!), dx, 'eval dx');
    expectClose(await host(wt.grad!), dw, 'eval dWeight');
    expectClose(await host(bt.grad!), db, 'eval dBias');

    const r = gpu(randnArr(shape, rng));
    const rm = gpu(rmA);
    const rv = gpu(rvA);
    const w = gpu(weight);
    const numeric = await fdGrad((xi) => sum(mul(batchNorm(xi, rm, rv, w, null, { training: false }), r)), x);
    const xg = gpu(x, true);
    sum(mul(batchNorm(xg, rm, rv, w, null, { training: false }), r)).backward();
    expectClose(await host(xg.grad!), numeric, 'eval dx vs finite differences', 5e-3, 3e-2);
  });

  it('training-mode gradients agree with finite differences', async () => {
    const rng = new Rng(21);
    for (const shape of [[3, 2, 3, 3], [1, 3, 2, 5]]) {
      const c = shape[1];
      const x = randnArr(shape, rng);
      const r = gpu(randnArr(shape, rng));
      const w0 = randArr([c], rng, 0.5, 1.5);
      const b = gpu(randArr([c], rng));
      const w = gpu(w0);
      const loss = (xi: Tensor, wi: Tensor) => sum(mul(batchNorm(xi, null, null, wi, b, { training: true }), r));
      const numericX = await fdGrad((xi) => loss(xi, w), x);
      const numericW = await fdGrad((wi) => loss(gpu(x), wi), w0);
      const xg = gpu(x, true);
      const wg = gpu(w0, true);
      loss(xg, wg).backward();
      expectClose(await host(xg.grad!), numericX, `[${shape}] dx vs finite differences`, 5e-3, 3e-2);
      expectClose(await host(wg.grad!), numericW, `[${shape}] dWeight vs finite differences`, 5e-3, 3e-2);
    }
  });

  it('batchNormStats is accurate when the mean dwarfs the spread', async () => {
    const rng = new Rng(3);
    const shape = [4, 3, 12, 12];
    const x = randnArr(shape, rng);
    for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(1000 + 0.05 * x.data[i]);
    const ref = batchNorm2dTrain(x);
    const { mean, var: variance } = batchNormStats(gpu(x));
    expectClose(await host(mean), ref.mean, 'mean', 1e-3, 1e-6);
    expectClose(await host(variance), ref.var, 'variance', 1e-7, 1e-3);
  });

  it('rejects bad arguments with clear errors', () => {
    const x = tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    const c3 = tensor([1, 1, 1]);
    expect(() => batchNorm(x, null, null, tensor([1, 1]), null, { training: true })).toThrow(/weight must have shape \[3\].*\[2,3,4\]/);
    expect(() => batchNorm(x, null, null, null, null, { training: false })).toThrow(/eval mode needs runningMean/);
    expect(() => batchNorm(x, c3, null, null, null, { training: true })).toThrow(/both runningMean and runningVar/);
    expect(() => batchNorm(tensor(new Float32Array(3), [1, 3]), null, null, null, null, { training: true })).toThrow(/more than 1 value per channel/);
    expect(() => batchNorm(tensor([1, 2, 3]), null, null, null, null, { training: true })).toThrow(/\[N, C, \.\.\.\]/);
  });
});
