import { describe, it, expect, beforeAll } from 'vitest';
import { init, tidy, Tensor } from '@lib/nn';
import { linear } from '../src/nn/functional/index.js';
import * as ref from './reference/index.js';
import { Rng, randArr } from './reference/index.js';
import { expectClose, gradcheck, toTensor } from './gradcheck.js';

/** Forward and the three gradients of linear against the float64 reference. */
async function checkLinear(xShape: number[], outF: number, withBias: boolean, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const inF = xShape[xShape.length - 1];
  const xa = randArr(xShape, rng);
  const wa = randArr([outF, inF], rng);
  const ba = withBias ? randArr([outF], rng) : undefined;
  const want = ref.linear(xa, wa, ba);
  const dOut = randArr(want.shape, rng);
  const grads = ref.linearBackward(xa, wa, dOut);
  const [x, w, b, out] = tidy(() => {
    const x = toTensor(xa, true);
    const w = toTensor(wa, true);
    const b = ba ? toTensor(ba, true) : null;
    const out = linear(x, w, b);
    out.backward(toTensor(dOut));
    return [x, w, b, out];
  });
  const what = `x [${xShape}] out ${outF}`;
  await expectClose(out as Tensor, want, 1e-5 * inF, 1e-4, `${what} forward`);
  await expectClose(x.grad!, grads.dInput, 1e-5 * outF, 1e-4, `${what} dInput`);
  const rows = xa.data.length / inF;
  await expectClose(w.grad!, grads.dWeight, 1e-5 * rows, 1e-4, `${what} dWeight`);
  if (b) await expectClose(b.grad!, grads.dBias, 1e-5 * rows, 1e-4, `${what} dBias`);
  for (const t of [x, w, b, out, x.grad, w.grad, b?.grad]) t?.dispose();
}

describe('linear against the float64 reference', () => {
  beforeAll(async () => { await init(); });
  it.each([
    [[5, 7], 3, true],
    [[1, 33], 14, true],
    [[2, 3, 6], 5, true],
    [[2, 1, 3, 10], 9, false],
    [[11], 4, true],
    [[37, 65], 66, true],
  ] as [number[], number, boolean][])('x %j -> %i features (bias %s)', (xShape, outF, bias) => checkLinear(xShape, outF, bias, xShape.length * 100 + outF));
  it('gradient by finite differences', async () => {
    const rng = new Rng(9);
    await gradcheck((x, w, b) => linear(x, w, b), (x, w, b) => ref.linear(x, w, b), [randArr([2, 3, 4], rng), randArr([5, 4], rng), randArr([5], rng)]);
  });
  it('passes no gradient to inputs that do not need one', () => {
    const [xg, wg] = tidy(() => {
      const x = toTensor(randArr([3, 4], new Rng(1)));
      const w = toTensor(randArr([2, 4], new Rng(2)), true);
      linear(x, w).sum().backward();
      return [x.grad, w.grad];
    });
    expect(xg).toBeNull();
    expect(wg?.shape).toEqual([2, 4]);
    wg?.dispose();
  });
});

describe('linear validation', () => {
  beforeAll(async () => { await init(); });
  const t = (...s: number[]) => Tensor.empty(s);
  it.each([
    ['weight rank', () => linear(t(2, 4), t(4)), /weight must be \[out, in\], got \[4\]/],
    ['feature mismatch', () => linear(t(2, 5), t(3, 4)), /input \[2,5\] must end in 4 features to match weight \[3,4\]/],
    ['scalar input', () => linear(t(), t(3, 4)), /input \[\] must end in 4 features/],
    ['bias shape', () => linear(t(2, 4), t(3, 4), t(4)), /bias must be \[3\], got \[4\]/],
    ['bias rank', () => linear(t(2, 4), t(3, 4), t(1, 3)), /bias must be \[3\], got \[1,3\]/],
  ])('rejects %s', (_name, fn, msg) => {
    expect(fn).toThrow(msg);
  });
});
