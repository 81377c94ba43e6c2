import { describe, it, beforeAll, afterEach } from 'vitest';
import { init, tidy, Tensor } from '@lib/nn';
import { conv2d, samePadding, type Conv2dOptions } from '../src/nn/functional/index.js';
import { setMaxBindingSizeForTesting } from '../src/tensor/device.js';
import * as ref from './reference/index.js';
import { Rng, randArr, type Arr } from './reference/index.js';
import { expectClose, gradcheck, toTensor } from './gradcheck.js';

/** A depthwise case: input [n, c, h, w], channel multiplier, kernel and options (groups = c is added). */
interface Case {
  x: [number, number, number, number];
  mult: number;
  k: number;
  opts: Conv2dOptions;
  bias?: boolean;
}

const name = (c: Case) => `x [${c.x}] mult ${c.mult} k ${c.k} ${JSON.stringify(c.opts)}`;

/** Forward and the three gradients against the float64 reference, for seeded random data. */
async function checkCase(c: Case, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const ch = c.x[1];
  const opts = { ...c.opts, groups: ch };
  const refOpts = { ...opts, padding: opts.padding === 'valid' ? 0 : opts.padding };
  const xa = randArr(c.x, rng);
  const wa = randArr([ch * c.mult, 1, c.k, c.k], rng);
  const ba = c.bias === false ? undefined : randArr([ch * c.mult], rng);
  const want = ref.conv2d(xa, wa, ba, refOpts);
  const dOut = randArr(want.shape, rng);
  const grads = ref.conv2dBackward(xa, wa, dOut, refOpts);
  const [x, w, b, out] = tidy(() => {
    const x = toTensor(xa, true);
    const w = toTensor(wa, true);
    const b = ba ? toTensor(ba, true) : null;
    const out = conv2d(x, w, b, opts);
    out.backward(toTensor(dOut));
    return [x, w, b, out];
  });
  const tol = 1e-5 * c.k * c.k;
  await expectClose(out as Tensor, want, tol, 1e-4, `${name(c)} forward`);
  await expectClose(x.grad!, grads.dInput, tol * c.mult, 1e-4, `${name(c)} dInput`);
  const redW = c.x[0] * want.shape[2] * want.shape[3];
  await expectClose(w.grad!, grads.dWeight, 1e-5 * redW, 1e-4, `${name(c)} dWeight`);
  if (b) await expectClose(b.grad!, grads.dBias, 1e-5 * redW, 1e-4, `${name(c)} dBias`);
  for (const t of [x, w, b, out, x.grad, w.grad, b?.grad]) t?.dispose();
}

const CASES: Case[] = [
  { x: [1, 3, 7, 7], mult: 1, k: 3, opts: { padding: 1 } },
  { x: [3, 5, 11, 13], mult: 1, k: 3, opts: { padding: 1, stride: 2 } },
  { x: [1, 6, 13, 11], mult: 1, k: 5, opts: { padding: 2 } },
  { x: [3, 3, 13, 13], mult: 1, k: 5, opts: { padding: 2, stride: 2 }, bias: false },
  { x: [1, 5, 12, 10], mult: 1, k: 3, opts: { stride: 2, padding: samePadding(12, 10, [3, 3], [2, 2]) } },
  { x: [3, 6, 11, 12], mult: 1, k: 5, opts: { stride: 2, padding: samePadding(11, 12, [5, 5], [2, 2]) } },
  { x: [1, 3, 11, 11], mult: 2, k: 3, opts: { padding: [0, 2, 1, 1] } },
  { x: [3, 5, 9, 7], mult: 2, k: 5, opts: { padding: 'same' } },
  { x: [1, 4, 13, 11], mult: 1, k: 3, opts: { dilation: 2, padding: 'same' } },
  { x: [3, 3, 11, 13], mult: 2, k: 3, opts: { dilation: 2, stride: 2, padding: [2, 1] } },
  { x: [1, 5, 7, 7], mult: 1, k: 3, opts: { padding: 'valid' } },
  { x: [3, 3, 7, 11], mult: 3, k: 1, opts: { stride: 2 } },
  { x: [1, 2, 13, 13], mult: 1, k: 7, opts: { padding: 3, stride: 2 } },
  // Rows a multiple of 4 wide: vec4 loads and stores, each column phase.
  { x: [2, 3, 8, 8], mult: 1, k: 3, opts: { padding: 1 } },
  { x: [1, 2, 12, 16], mult: 2, k: 5, opts: { padding: 2 } },
  { x: [2, 3, 16, 16], mult: 1, k: 5, opts: { stride: 2, padding: samePadding(16, 16, [5, 5], [2, 2]) } },
  { x: [1, 2, 8, 12], mult: 1, k: 3, opts: { dilation: 2, padding: 'same' } },
  { x: [1, 3, 8, 4], mult: 1, k: 3, opts: { padding: [1, 1, 0, 2] } },
];

/** Random depthwise configurations from a seeded generator, valid by construction. */
function randomCases(seed: number, count: number): Case[] {
  const r = new Rng(seed);
  const pick = <T>(xs: T[]) => xs[r.int(xs.length)];
  const out: Case[] = [];
  while (out.length < count) {
    const [k, s, d, h, w] = [pick([3, 5]), pick([1, 2]), pick([1, 2]), pick([7, 11, 13]), pick([7, 11, 13])];
    const padding = pick<Conv2dOptions['padding']>([1, [2, 1], [0, 2, 2, 1], 'valid', samePadding(h, w, [k, k], [s, s], [d, d])]);
    const c: Case = { x: [pick([1, 3]), pick([3, 5, 6]), h, w], mult: pick([1, 2]), k, opts: { stride: s, dilation: d, padding }, bias: r.int(2) === 1 };
    try {
      ref.convGeometry(c.x, [c.x[1] * c.mult, 1, k, k], { ...c.opts, groups: c.x[1], padding: padding === 'valid' ? 0 : padding });
      out.push(c);
    } catch {
      // the dilated kernel does not fit the padded input
    }
  }
  return out;
}

describe('depthwise conv2d against the float64 reference', () => {
  beforeAll(async () => { await init(); });
  CASES.forEach((c, i) => it(name(c), () => checkCase(c, 10 + i)));
  it('seeded random configurations', async () => {
    for (const [i, c] of randomCases(77, 8).entries()) await checkCase(c, 300 + i);
  });
});

describe('depthwise conv2d gradient by finite differences', () => {
  beforeAll(async () => { await init(); });
  it('stride 2, multiplier 2, asymmetric padding', async () => {
    const rng = new Rng(5);
    const opts: Conv2dOptions = { groups: 2, stride: 2, padding: [1, 2, 0, 1] };
    const probe = (x: Arr, w: Arr) => ref.conv2d(x, w, undefined, opts as ref.Conv2dOptions);
    await gradcheck((x, w) => conv2d(x, w, null, opts), probe, [randArr([2, 2, 7, 6], rng), randArr([4, 1, 3, 3], rng)]);
  });
});

describe('depthwise conv2d over the binding limit', () => {
  beforeAll(async () => { await init(); });
  afterEach(() => setMaxBindingSizeForTesting(undefined));
  it('splits by image with sub-range bindings', async () => {
    // 5·11·11 floats = 2420 bytes per input image; a 4 KiB limit gives one image per chunk.
    setMaxBindingSizeForTesting(4096);
    await checkCase({ x: [4, 5, 11, 11], mult: 1, k: 3, opts: { stride: 2, padding: 1 } }, 700);
    // 3·12·12 floats: two images per chunk, the second chunk 32 floats past its aligned binding (vec4 path).
    setMaxBindingSizeForTesting(4096);
    await checkCase({ x: [4, 3, 12, 12], mult: 1, k: 3, opts: { padding: 1 } }, 701);
  });
});
