import { describe, it, expect, beforeAll } from 'vitest';
import { init, tensor, type Tensor } from '@lib/nn';
import { binaryCrossEntropyWithLogits, crossEntropy, mseLoss, type Reduction } from '../src/nn/functional/index.js';
import {
  Rng, arr, numericGrad, randArr, randnArr, type Arr,
  binaryCrossEntropyWithLogits as refBce, binaryCrossEntropyWithLogitsBackward as refBceBackward,
  crossEntropy as refCe, crossEntropyBackward as refCeBackward, mseLoss as refMse, mseLossBackward as refMseBackward,
} from './reference/index.js';
import { expectArrClose, fdGrad, toArr as host, toTensor as gpu } from './gradcheck.js';
const expectClose = expectArrClose;




/** Upstream gradient for a loss output: random per element for 'none', a random scalar otherwise. */
const upstream = (shape: number[], rng: Rng): Arr => (shape.length ? randnArr(shape, rng) : arr([], [rng.uniform(0.5, 2)]));

const REDUCTIONS: Reduction[] = ['mean', 'sum', 'none'];

describe('binaryCrossEntropyWithLogits', () => {
  beforeAll(async () => {
    await init();
  });

  it('matches the reference, with weight and posWeight, for every reduction, including its gradients', async () => {
    const rng = new Rng(1);
    const checks: Promise<void>[] = [];
    for (const shape of [[3, 5], [2, 3, 7]]) {
      const last = shape[shape.length - 1];
      const variants: { weight?: Arr; posWeight?: Arr }[] = [
        {},
        { posWeight: randArr([last], rng, 0.5, 3) },
        { weight: randArr([shape[0], ...shape.slice(1).map(() => 1)], rng, 0.2, 2), posWeight: randArr([last], rng, 0.5, 3) },
        { weight: randArr(shape, rng, 0.2, 2) },
      ];
      for (const v of variants) {
        for (const reduction of REDUCTIONS) {
          const x = randnArr(shape, rng);
          for (let i = 0; i < x.data.length; i++) x.data[i] *= 4;
          const y = randArr(shape, rng, 0, 1);
          const opts = { weight: v.weight, posWeight: v.posWeight, reduction };
          const what = `[${shape}] ${reduction} weight=${!!v.weight} posWeight=${!!v.posWeight}`;
          const xt = gpu(x, true);
          const yt = gpu(y, true);
          const gpuOpts = { weight: v.weight && gpu(v.weight), posWeight: v.posWeight && gpu(v.posWeight), reduction };
          const loss = binaryCrossEntropyWithLogits(xt, yt, gpuOpts);
          const dOut = upstream(loss.shape, rng);
          loss.backward(gpu(dOut));
          checks.push((async () => {
            const [gotLoss, dx, dy] = await Promise.all([host(loss), host(xt.grad!), host(yt.grad!)]);
            expectClose(gotLoss, refBce(x, y, opts), `${what} loss`);
            expectClose(dx, refBceBackward(x, y, opts, dOut), `${what} dx`);
            // The target gradient, from central differences of the float64 reference.
            const up = reduction === 'none' ? dOut.data : null;
            const dyWant = numericGrad((yy) => {
              const l = refBce(x, arr(shape, yy), opts);
              return up ? l.data.reduce((s, li, i) => s + li * up[i], 0) : l.data[0] * dOut.data[0];
            }, Float64Array.from(y.data));
            expectClose(dy, arr(shape, dyWant), `${what} dy`, 1e-4, 1e-3);
          })());
        }
      }
    }
    await Promise.all(checks);
  });

  it('stays finite and exact for large logits', async () => {
    const x = arr([6], [-200, -40, -1, 1, 40, 200]);
    const y = arr([6], [1, 0, 1, 0, 1, 0]);
    const xt = gpu(x, true);
    const loss = binaryCrossEntropyWithLogits(xt, gpu(y), { reduction: 'none' });
    loss.backward(tensor(new Float32Array(6).fill(1)));
    expectClose(await host(loss), refBce(x, y, { reduction: 'none' }), 'loss', 1e-5, 1e-5);
    expectClose(await host(xt.grad!), refBceBackward(x, y, { reduction: 'none' }), 'dx', 1e-6, 1e-5);
  });

  it('gradients agree with finite differences', async () => {
    const rng = new Rng(2);
    const x = randnArr([3, 4], rng);
    const y = gpu(randArr([3, 4], rng, 0, 1));
    const pw = gpu(randArr([4], rng, 0.5, 3));
    const f = (t: Tensor) => binaryCrossEntropyWithLogits(t, y, { posWeight: pw });
    const numeric = await fdGrad(f, x);
    const xt = gpu(x, true);
    f(xt).backward();
    expectClose(await host(xt.grad!), numeric, 'dx vs finite differences', 2e-3, 2e-2);
  });

  it('rejects mismatched shapes naming both', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => binaryCrossEntropyWithLogits(x, tensor(new Float32Array(6), [3, 2]))).toThrow(/input shape \[2,3\] and target shape \[3,2\]/);
    expect(() => binaryCrossEntropyWithLogits(x, x, { posWeight: tensor([1, 2]) })).toThrow(/posWeight/);
    expect(() => binaryCrossEntropyWithLogits(x, x, { weight: tensor(new Float32Array(12), [2, 2, 3]) })).toThrow(/weight of shape \[2,2,3\] does not broadcast to the input shape \[2,3\]/);
    expect(() => binaryCrossEntropyWithLogits(x, x, { reduction: 'avg' as Reduction })).toThrow(/unknown reduction 'avg'/);
  });
});

describe('crossEntropy', () => {
  beforeAll(async () => {
    await init();
  });

  it('matches the reference for every reduction, with class weights, host or tensor targets, and ignoreIndex', async () => {
    const rng = new Rng(3);
    const checks: Promise<void>[] = [];
    for (const [n, c] of [[5, 3], [3, 7], [1, 2]]) {
      for (const weighted of [false, true]) {
        for (const reduction of REDUCTIONS) {
          for (const ignore of [false, true]) {
            const x = randnArr([n, c], rng);
            for (let i = 0; i < x.data.length; i++) x.data[i] *= 3;
            const target = Array.from({ length: n }, () => rng.int(c));
            if (ignore) target[rng.int(n)] = -100;
            const weight = weighted ? randArr([c], rng, 0.2, 2) : undefined;
            const what = `[${n}, ${c}] ${reduction} weighted=${weighted} ignore=${ignore}`;
            // ignoreIndex drops rows: the reference over the kept rows only.
            const kept = target.map((t, i) => (t === -100 ? -1 : i)).filter((i) => i >= 0);
            const xKept = arr([kept.length, c], kept.flatMap((i) => Array.from(x.data.subarray(i * c, (i + 1) * c))));
            const tKept = kept.map((i) => target[i]);
            const xt = gpu(x, true);
            const targetArg = ignore ? tensor(target) : target;
            const loss = crossEntropy(xt, targetArg, { weight: weight && gpu(weight), reduction });
            const dOut = upstream(loss.shape, rng);
            loss.backward(gpu(dOut));
            if (kept.length === 0) continue;
            checks.push((async () => {
              const [gotLoss, dx] = await Promise.all([host(loss), host(xt.grad!)]);
              const wantLoss = refCe(xKept, tKept, { weight, reduction });
              if (reduction === 'none') expectClose(arr([kept.length], kept.map((i) => gotLoss.data[i])), wantLoss, `${what} loss`);
              else expectClose(gotLoss, wantLoss, `${what} loss`);
              const dKept = reduction === 'none' ? arr([kept.length], kept.map((i) => dOut.data[i])) : dOut;
              const wantKept = refCeBackward(xKept, tKept, { weight, reduction }, dKept);
              const want = arr([n, c]);
              kept.forEach((i, r) => want.data.set(wantKept.data.subarray(r * c, (r + 1) * c), i * c));
              expectClose(dx, want, `${what} dx`);
            })());
          }
        }
      }
    }
    await Promise.all(checks);
  });

  it('gradients agree with finite differences', async () => {
    const rng = new Rng(4);
    const x = randnArr([3, 5], rng);
    const w = gpu(randArr([5], rng, 0.5, 2));
    const f = (t: Tensor) => crossEntropy(t, [4, 0, 2], { weight: w });
    const numeric = await fdGrad(f, x);
    const xt = gpu(x, true);
    f(xt).backward();
    expectClose(await host(xt.grad!), numeric, 'dx vs finite differences', 2e-3, 2e-2);
  });

  it('rejects invalid targets: host targets throw, tensor targets give NaN', async () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => crossEntropy(x, [0, 3])).toThrow(/crossEntropy: target 3 at row 1 is not a class index in \[0, 3\)/);
    expect(() => crossEntropy(x, [0.5, 1])).toThrow(/target 0.5 at row 0/);
    expect(() => crossEntropy(x, [0])).toThrow(/1 targets for 2 rows/);
    expect(() => crossEntropy(tensor([1, 2, 3]), [0])).toThrow(/logits must be \[N, C\], got \[3\]/);
    expect(() => crossEntropy(x, [0, 1], { weight: tensor([1, 1]) })).toThrow(/weight must have shape \[3\], got \[2\]/);
    expect(Number.isNaN(await crossEntropy(x, tensor([0, 3])).item())).toBe(true);
    expect(Number.isNaN(await crossEntropy(x, tensor([-1, 0])).item())).toBe(true);
  });
});

describe('mseLoss', () => {
  beforeAll(async () => {
    await init();
  });

  it('matches the reference for every reduction, with gradients for input and target', async () => {
    const rng = new Rng(5);
    const checks: Promise<void>[] = [];
    for (const shape of [[7], [3, 5], [2, 3, 4]]) {
      for (const reduction of REDUCTIONS) {
        const x = randnArr(shape, rng);
        const y = randnArr(shape, rng);
        const xt = gpu(x, true);
        const yt = gpu(y, true);
        const loss = mseLoss(xt, yt, { reduction });
        const dOut = upstream(loss.shape, rng);
        loss.backward(gpu(dOut));
        const what = `[${shape}] ${reduction}`;
        checks.push((async () => {
          const [gotLoss, dx, dy] = await Promise.all([host(loss), host(xt.grad!), host(yt.grad!)]);
          expectClose(gotLoss, refMse(x, y, reduction), `${what} loss`);
          const want = refMseBackward(x, y, reduction, dOut);
          expectClose(dx, want, `${what} dx`);
          expectClose(dy, arr(shape, want.data.map((v) => -v)), `${what} dy`);
        })());
      }
    }
    await Promise.all(checks);
    expect(() => mseLoss(tensor([1, 2]), tensor([1, 2, 3]))).toThrow(/mseLoss: input shape \[2\] and target shape \[3\]/);
  });
});
