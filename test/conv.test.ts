import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { init, tidy, Tensor, deviceInfo } from '@lib/nn';
import { conv2d, samePadding, type Conv2dOptions } from '../src/nn/functional/index.js';
import { setMaxBindingSizeForTesting } from '../src/tensor/device.js';
import * as ref from './reference/index.js';
import { Rng, randArr, type Arr } from './reference/index.js';
import { expectClose, gradcheck, toTensor, withDeviceInfo } from './gradcheck.js';

/** One case: input [n, c, h, w], weight [o, c/groups, k, k] (or [kh, kw]) and the options. */
interface Case {
  name: string;
  x: [number, number, number, number];
  o: number;
  k: number | [number, number];
  opts: Conv2dOptions;
  bias?: boolean;
}

/** The reference takes explicit padding only ('valid' is 0; 4-tuples are [top, bottom, left, right] in both). */
const refOpts = (o: Conv2dOptions): ref.Conv2dOptions => ({ ...o, padding: o.padding === 'valid' ? 0 : o.padding });

/**
 * Forward, dInput, dWeight and dBias of the GPU op against the float64 reference, for random data.
 * Tolerances scale with the length of each reduction.
 */
async function checkCase(c: Case, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const [kh, kw] = typeof c.k === 'number' ? [c.k, c.k] : c.k;
  const groups = c.opts.groups ?? 1;
  const xa = randArr(c.x, rng);
  const wa = randArr([c.o, c.x[1] / groups, kh, kw], rng);
  const ba = c.bias === false ? undefined : randArr([c.o], rng);
  const want = ref.conv2d(xa, wa, ba, refOpts(c.opts));
  const dOut = randArr(want.shape, rng);
  const grads = ref.conv2dBackward(xa, wa, dOut, refOpts(c.opts));
  const [x, w, b, out] = tidy(() => {
    const x = toTensor(xa, true);
    const w = toTensor(wa, true);
    const b = ba ? toTensor(ba, true) : null;
    const out = conv2d(x, w, b, c.opts);
    out.backward(toTensor(dOut));
    return [x, w, b, out];
  });
  const redFwd = (c.x[1] / groups) * kh * kw;
  await expectClose(out as Tensor, want, 1e-5 * redFwd, 1e-4, `${c.name} forward`);
  await expectClose(x.grad!, grads.dInput, 1e-5 * c.o * kh * kw, 1e-4, `${c.name} dInput`);
  const redW = c.x[0] * want.shape[2] * want.shape[3];
  await expectClose(w.grad!, grads.dWeight, 1e-5 * redW, 1e-4, `${c.name} dWeight`);
  if (b) await expectClose(b.grad!, grads.dBias, 1e-5 * redW, 1e-4, `${c.name} dBias`);
  for (const t of [x, w, b, out, x.grad, w.grad, b?.grad]) t?.dispose();
}

const CASES: Case[] = [
  { name: '3x3 pad 1', x: [1, 3, 7, 7], o: 5, k: 3, opts: { padding: 1 } },
  { name: '3x3 stride 2 pad [1,2] batch 3', x: [3, 5, 11, 9], o: 6, k: 3, opts: { stride: 2, padding: [1, 2] } },
  { name: '5x5 asymmetric pad', x: [1, 6, 13, 11], o: 3, k: 5, opts: { padding: [1, 3, 2, 0] } },
  { name: 'valid', x: [3, 3, 7, 11], o: 4, k: 3, opts: { padding: 'valid' }, bias: false },
  { name: 'same dilation 2', x: [1, 5, 11, 7], o: 6, k: 3, opts: { padding: 'same', dilation: 2 } },
  { name: 'same even kernel', x: [1, 3, 7, 7], o: 5, k: [2, 4], opts: { padding: 'same' } },
  { name: 'static same stride 2', x: [1, 6, 13, 13], o: 5, k: 3, opts: { stride: 2, padding: samePadding(13, 13, [3, 3], [2, 2]) } },
  { name: 'static same 5x5 stride 2 even input', x: [3, 3, 12, 10], o: 4, k: 5, opts: { stride: 2, padding: samePadding(12, 10, [5, 5], [2, 2]) } },
  { name: 'groups 2', x: [3, 6, 7, 7], o: 10, k: 3, opts: { groups: 2, padding: 1 } },
  { name: 'groups 3 stride 2 dilation 2', x: [1, 6, 13, 11], o: 9, k: 3, opts: { groups: 3, stride: 2, dilation: 2, padding: 2 } },
  { name: '1x1', x: [3, 5, 7, 7], o: 6, k: 1, opts: {} },
  { name: '1x1 vec4 path', x: [3, 6, 4, 6], o: 9, k: 1, opts: {} },
  { name: '1x1 without bias (a batched matmul both ways)', x: [3, 6, 5, 5], o: 9, k: 1, opts: {}, bias: false },
  { name: '1x1 stride 2 (downsample)', x: [3, 6, 7, 7], o: 5, k: 1, opts: { stride: 2 }, bias: false },
  { name: '1x1 on 2x2 images (weight gradient as one matmul over the batch)', x: [5, 12, 2, 2], o: 20, k: 1, opts: {}, bias: false },
  { name: '1x1 on 3x3 images with bias', x: [3, 7, 3, 3], o: 18, k: 1, opts: {} },
  { name: '7x7 stride 2 pad 3 (stem)', x: [1, 3, 13, 13], o: 6, k: 7, opts: { stride: 2, padding: 3 } },
  { name: 'stride [2,1] dilation [1,2]', x: [1, 3, 11, 13], o: 5, k: 3, opts: { stride: [2, 1], dilation: [1, 2], padding: [1, 2] } },
  { name: 'kernel wider than stride 3', x: [3, 5, 11, 11], o: 6, k: 2, opts: { stride: 3 } },
  { name: 'many channels', x: [1, 21, 5, 5], o: 17, k: 3, opts: { padding: 1 } },
  // 16 or more output channels (per group) take the tiled subgroup kernel; these cover its column
  // tiles, channel padding, groups, strides and partial position tiles in both GEMM directions.
  { name: 'tiled: 32 channels stride 2 batch 2', x: [2, 12, 9, 11], o: 32, k: 3, opts: { stride: 2, padding: 1 } },
  { name: 'tiled both ways, groups 2', x: [1, 40, 7, 6], o: 36, k: 3, opts: { groups: 2, padding: [1, 0] } },
  { name: 'tiled 1x1 two column tiles stride 2', x: [2, 17, 6, 5], o: 70, k: 1, opts: { stride: 2 } },
  { name: 'tiled stem 7x7 stride 2', x: [1, 3, 13, 13], o: 24, k: 7, opts: { stride: 2, padding: 3 } },
  { name: 'tiled patches: groups 2, 2 channels each, dilation 2, stride 2', x: [3, 4, 9, 8], o: 32, k: 3, opts: { groups: 2, stride: 2, dilation: 2, padding: [2, 0, 1, 2] } },
  { name: 'tiled dilation 2 stride 2 data gradient', x: [3, 20, 9, 10], o: 8, k: 3, opts: { stride: 2, dilation: 2, padding: [2, 1] } },
];

/** Random configurations drawn from a seeded generator, each valid by construction. */
function randomCases(seed: number, count: number): Case[] {
  const r = new Rng(seed);
  const pick = <T>(xs: T[]) => xs[r.int(xs.length)];
  const out: Case[] = [];
  while (out.length < count) {
    const groups = pick([1, 1, 2, 3]);
    const c = groups * pick([1, 2, 3]);
    const o = groups * pick([1, 2, 3]);
    const k = pick([1, 3, 5]);
    const s = pick([1, 2]);
    const d = pick([1, 2]);
    const h = pick([5, 7, 11, 13]);
    const w = pick([5, 7, 11, 13]);
    const padding = pick<Conv2dOptions['padding']>([0, 1, [1, 2], [2, 0, 1, 1], 'valid', samePadding(h, w, [k, k], [s, s], [d, d])]);
    const opts: Conv2dOptions = { groups, stride: s, dilation: d, padding };
    try {
      ref.convGeometry([1, c, h, w], [o, c / groups, k, k], refOpts(opts));
    } catch {
      continue; // kernel larger than the padded input
    }
    out.push({ name: `random ${JSON.stringify({ c, o, h, w, k, ...opts })}`, x: [pick([1, 3]), c, h, w], o, k, opts, bias: r.int(2) === 1 });
  }
  return out;
}

describe('conv2d against the float64 reference', () => {
  beforeAll(async () => { await init(); });
  CASES.forEach((c, i) => it(c.name, () => checkCase(c, 100 + i)));
  it('seeded random configurations', async () => {
    for (const [i, c] of randomCases(2024, 8).entries()) await checkCase(c, 500 + i);
  });
});

describe('conv2d on devices without subgroups', () => {
  beforeAll(async () => { await init(); });
  it('takes the plain GEMM loop and gives the same results', async () => {
    await withDeviceInfo({ subgroups: false }, async () => {
      await checkCase({ name: 'plain 3x3 stride 2', x: [3, 5, 11, 9], o: 6, k: 3, opts: { stride: 2, padding: [1, 2] } }, 40);
      await checkCase({ name: 'plain groups 2', x: [1, 6, 7, 7], o: 18, k: 3, opts: { groups: 2, padding: 1 } }, 41);
      await checkCase({ name: 'plain 1x1', x: [3, 3, 5, 5], o: 4, k: 1, opts: {} }, 42);
      await checkCase({ name: 'plain 1x1 without bias', x: [2, 5, 4, 3], o: 20, k: 1, opts: {}, bias: false }, 43);
      await checkCase({ name: 'plain 3x3 with 16+ channels', x: [1, 18, 5, 6], o: 20, k: 3, opts: { padding: 1 } }, 44);
    });
  });
});

describe('conv2d on a GPU adapter', () => {
  beforeAll(async () => { await init(); });
  it('groups several 8-lane tiles per workgroup (sharing A by shuffle) and gives the same results', async () => {
    // Tile counts that leave the last workgroup partly filled; both GEMM directions, groups, strides.
    if (!deviceInfo().subgroups) return;
    await withDeviceInfo({ isCpu: false }, async () => {
      await checkCase({ name: 'gpu tiled 3x3 stride 2 batch 2', x: [2, 12, 9, 11], o: 32, k: 3, opts: { stride: 2, padding: 1 } }, 45);
      await checkCase({ name: 'gpu tiled groups 2', x: [1, 40, 7, 6], o: 36, k: 3, opts: { groups: 2, padding: [1, 0] } }, 46);
      await checkCase({ name: 'gpu tiled patches 7x7 stride 2', x: [1, 3, 13, 13], o: 24, k: 7, opts: { stride: 2, padding: 3 } }, 47);
    });
  });
});

describe('conv2d on folded dispatch grids', () => {
  beforeAll(async () => { await init(); });
  it('ignores the spare workgroups of a grid folded into two dimensions', async () => {
    // At most 64 workgroups per dimension: the tiled GEMM's 69 row tiles fold into 2 x 35, one
    // spare, which would write into the second image; the plain kernels fold as well.
    const limits = { ...deviceInfo().limits, maxComputeWorkgroupsPerDimension: 64 };
    await withDeviceInfo({ limits }, async () => {
      await checkCase({ name: 'folded tiled 3x3 batch 3', x: [3, 12, 27, 27], o: 32, k: 3, opts: { padding: 1 } }, 48);
      await checkCase({ name: 'folded plain groups 2', x: [3, 6, 27, 27], o: 10, k: 3, opts: { groups: 2, padding: 1 } }, 49);
    });
  });
});

describe('conv2d gradient by finite differences', () => {
  beforeAll(async () => { await init(); });
  it('through a regular strided conv', async () => {
    const rng = new Rng(3);
    const opts: Conv2dOptions = { stride: 2, padding: [1, 0, 1, 2], dilation: [1, 2] };
    const probe = (x: Arr, w: Arr) => ref.conv2d(x, w, undefined, refOpts(opts));
    await gradcheck((x, w) => conv2d(x, w, null, opts), probe, [randArr([2, 3, 6, 7], rng), randArr([4, 3, 3, 2], rng)]);
  });
});

describe('conv2d splits work over the binding limit', () => {
  beforeAll(async () => { await init(); });
  afterEach(() => setMaxBindingSizeForTesting(undefined));
  it('runs chunks of images through sub-range bindings', async () => {
    // 3·5·9·9 floats = 4860 bytes per image: a 6 KiB limit forces one image per chunk, at unaligned offsets.
    setMaxBindingSizeForTesting(6144);
    await checkCase({ name: 'split general', x: [5, 3, 9, 9], o: 5, k: 3, opts: { padding: 1, stride: [1, 2] } }, 900);
    await checkCase({ name: 'split depthwise', x: [5, 3, 9, 9], o: 6, k: 3, opts: { padding: 1, groups: 3 } }, 901);
    await checkCase({ name: 'split 1x1', x: [4, 4, 8, 8], o: 6, k: 1, opts: {} }, 902);
    // 16 channels take the tiled kernel (rows across the images of a chunk); 5184 bytes per image.
    await checkCase({ name: 'split tiled', x: [3, 16, 9, 9], o: 16, k: 1, opts: { stride: 2 } }, 903);
  });
  it('names the sizes when one image does not fit', () => {
    setMaxBindingSizeForTesting(1024);
    const x = Tensor.empty([1, 4, 16, 16]);
    const w = Tensor.empty([4, 4, 3, 3]);
    expect(() => conv2d(x, w)).toThrow(/one item needs a \d+-byte binding, above the 1024-byte storage binding limit/);
    x.dispose();
    w.dispose();
  });
});

describe('conv2d validation', () => {
  beforeAll(async () => { await init(); });
  const t = (...s: number[]) => Tensor.empty(s);
  it.each([
    ['rank of input', () => conv2d(t(3, 8, 8), t(4, 3, 3, 3)), /input must be 4-D \[N, C, H, W\], got \[3,8,8\]/],
    ['rank of weight', () => conv2d(t(1, 3, 8, 8), t(4, 3, 3)), /weight must be 4-D/],
    ['channel mismatch', () => conv2d(t(1, 3, 8, 8), t(4, 2, 3, 3)), /expects 2 input channels, input \[1,3,8,8\] has 3/],
    ['groups do not divide', () => conv2d(t(1, 4, 8, 8), t(6, 2, 3, 3), null, { groups: 4 }), /groups=4 must divide input channels 4 and output channels 6/],
    ['in/groups mismatch', () => conv2d(t(1, 4, 8, 8), t(4, 4, 3, 3), null, { groups: 2 }), /expects 8 input channels/],
    ['kernel too large', () => conv2d(t(1, 1, 4, 4), t(1, 1, 5, 5)), /dilated kernel 5x5 is larger than the padded input 4x4/],
    ['dilated kernel too large', () => conv2d(t(1, 1, 6, 6), t(1, 1, 3, 3), null, { dilation: 3 }), /dilated kernel 7x7/],
    ['bad stride', () => conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), null, { stride: 0 }), /stride must be a positive integer/],
    ['fractional stride', () => conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), null, { stride: [1, 1.5] }), /stride must be a positive integer/],
    ['negative padding', () => conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), null, { padding: -1 }), /padding must be non-negative/],
    ['3-element padding', () => conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), null, { padding: [1, 1, 1] as never }), /padding must be a number, \[rows, cols\]/],
    ["'same' with stride 2", () => conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), null, { stride: 2, padding: 'same' }), /padding='same' needs stride 1/],
    ['bias shape', () => conv2d(t(1, 1, 8, 8), t(2, 1, 3, 3), t(3)), /bias must be \[2\], got \[3\]/],
    ['unknown option', () => conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), null, { padding_mode: 'zeros' } as never), /unknown option 'padding_mode'/],
  ])('rejects %s', (_name, fn, msg) => {
    expect(fn).toThrow(msg);
  });
  it('samePadding matches the TF formula (reference implementation)', () => {
    for (const [h, w, k, s, d] of [[13, 12, 3, 2, 1], [7, 7, 5, 1, 1], [10, 11, 3, 2, 2], [1, 1, 3, 2, 1], [528, 528, 3, 2, 1]]) {
      expect(samePadding(h, w, [k, k], [s, s], [d, d])).toEqual([...ref.samePadding(h, w, k, k, s, d)]);
    }
    expect(() => samePadding(8, 8, [3, 3], [0, 1])).toThrow(/samePadding: height needs positive integers/);
  });
});
