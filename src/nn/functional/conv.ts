/**
 * `conv2d` with PyTorch semantics (NCHW, weight [out, in/groups, kh, kw]) and its three gradients,
 * each its own kernel: the forward and the data gradient are the implicit-GEMM kernel of
 * shaders/conv.ts (the data gradient once per stride phase), the weight gradient a split reduction
 * over images and pixels, the bias gradient a per-channel sum. Depthwise convolutions
 * (groups = input channels) go to the stencil kernels of shaders/depthwise.ts.
 *
 * Tensors larger than one storage binding are processed a chunk of images at a time through
 * sub-range bindings; a single image must fit in one binding.
 */
import { deviceInfo, dispatch, maxBindingSize } from '../../tensor/device.js';
import { record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { sum, zeros } from '../../tensor/ops/index.js';
import {
  ARRANGE_U, BIAS_U, GCONV_U, PACK_U, SUBGROUP, WGRAD_U,
  arrangeWeightsKernel, biasGradKernel, gconvKernel, packKernel, weightGradKernel, weightGradThreads,
} from '../../shaders/conv.js';
import { DW_WGRAD_U, STENCIL_U, dwWeightGradKernel, segmentWidth, stencilKernel } from '../../shaders/depthwise.js';

/** Padding: all sides, [rows, cols], [top, bottom, left, right], none ('valid') or PyTorch's stride-1 'same'. */
export type Conv2dPadding = number | [number, number] | [number, number, number, number] | 'valid' | 'same';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: Conv2dPadding;
  dilation?: number | [number, number];
  groups?: number;
}

/**
 * TensorFlow-style static "same" padding (EfficientNet-PyTorch's Conv2dStaticSamePadding), to pass
 * as explicit padding: out = ceil(in / stride), total pad max((out-1)·stride + (k-1)·dilation + 1 - in, 0),
 * the odd pixel at the bottom/right. Returns [top, bottom, left, right].
 */
export function samePadding(inH: number, inW: number, kernel: [number, number], stride: [number, number], dilation: [number, number] = [1, 1]): [number, number, number, number] {
  const one = (size: number, k: number, s: number, d: number, what: string) => {
    if (![size, k, s, d].every((v) => Number.isInteger(v) && v > 0)) {
      throw new Error(`samePadding: ${what} needs positive integers, got in=${size} kernel=${k} stride=${s} dilation=${d}`);
    }
    const pad = Math.max((Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0);
    return [Math.floor(pad / 2), pad - Math.floor(pad / 2)];
  };
  return [...one(inH, kernel[0], stride[0], dilation[0], 'height'), ...one(inW, kernel[1], stride[1], dilation[1], 'width')] as [number, number, number, number];
}

interface Geo {
  n: number; c: number; h: number; w: number; o: number; cpg: number; opg: number; groups: number;
  kh: number; kw: number; sh: number; sw: number; dh: number; dw: number;
  top: number; bottom: number; left: number; right: number; oh: number; ow: number;
  depthwise: boolean; detail: string;
}

const KNOWN = new Set(['stride', 'padding', 'dilation', 'groups']);
const isPos = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

function pair(v: number | [number, number], what: string, detail: string): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every(isPos)) throw new Error(`conv2d: ${what} must be a positive integer or a pair of them, got ${JSON.stringify(v)} (${detail})`);
  return [p[0], p[1]];
}

function geometry(x: Tensor, wt: Tensor, bias: Tensor | null, opts: Conv2dOptions): Geo {
  const base = `input [${x.shape}], weight [${wt.shape}]`;
  for (const k of Object.keys(opts)) if (!KNOWN.has(k)) throw new Error(`conv2d: unknown option '${k}' (${base})`);
  if (x.ndim !== 4) throw new Error(`conv2d: input must be 4-D [N, C, H, W], got [${x.shape}]`);
  if (wt.ndim !== 4) throw new Error(`conv2d: weight must be 4-D [out, in/groups, kh, kw], got [${wt.shape}]`);
  const [n, c, h, w] = x.shape;
  const [o, cpg, kh, kw] = wt.shape;
  const groups = opts.groups ?? 1;
  if (!isPos(groups)) throw new Error(`conv2d: groups must be a positive integer, got ${groups} (${base})`);
  if (![c, h, w, o, cpg, kh, kw].every(isPos)) throw new Error(`conv2d: every size but the batch must be positive (${base})`);
  if (c % groups || o % groups) throw new Error(`conv2d: groups=${groups} must divide input channels ${c} and output channels ${o} (${base})`);
  if (cpg * groups !== c) throw new Error(`conv2d: weight [${wt.shape}] with groups=${groups} expects ${cpg * groups} input channels, input [${x.shape}] has ${c}`);
  const [sh, sw] = pair(opts.stride ?? 1, 'stride', base);
  const [dh, dw] = pair(opts.dilation ?? 1, 'dilation', base);
  const p = opts.padding ?? 0;
  let pads: number[];
  if (p === 'valid') pads = [0, 0, 0, 0];
  else if (p === 'same') {
    if (sh !== 1 || sw !== 1) throw new Error(`conv2d: padding='same' needs stride 1, got [${sh}, ${sw}]; use samePadding() for TF-style padding (${base})`);
    const th = dh * (kh - 1);
    const tw = dw * (kw - 1);
    pads = [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  } else if (typeof p === 'number') pads = [p, p, p, p];
  else if (Array.isArray(p) && p.length === 2) pads = [p[0], p[0], p[1], p[1]];
  else if (Array.isArray(p) && p.length === 4) pads = [...p];
  else throw new Error(`conv2d: padding must be a number, [rows, cols], [top, bottom, left, right], 'valid' or 'same', got ${JSON.stringify(p)}`);
  if (!pads.every((v) => Number.isInteger(v) && v >= 0)) throw new Error(`conv2d: padding must be non-negative integers, got ${JSON.stringify(p)} (${base})`);
  const [top, bottom, left, right] = pads;
  const ekh = dh * (kh - 1) + 1;
  const ekw = dw * (kw - 1) + 1;
  if (h + top + bottom < ekh || w + left + right < ekw) {
    throw new Error(`conv2d: dilated kernel ${ekh}x${ekw} is larger than the padded input ${h + top + bottom}x${w + left + right} (${base}, padding [${pads}])`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== o)) throw new Error(`conv2d: bias must be [${o}], got [${bias.shape}] (${base})`);
  const oh = Math.floor((h + top + bottom - ekh) / sh) + 1;
  const ow = Math.floor((w + left + right - ekw) / sw) + 1;
  const detail = `${base} stride [${sh},${sw}] padding [${pads}] dilation [${dh},${dw}] groups ${groups}`;
  return { n, c, h, w, o, cpg, opg: o / groups, groups, kh, kw, sh, sw, dh, dw, top, bottom, left, right, oh, ow, depthwise: groups === c, detail };
}

// ---------------------------------------------------------------- chunks of images under the binding limit

/** A sub-range binding of images [n0, n0 + nb) of a tensor with `per` elements per image, and the chunk's element offset inside it. */
function bindImages(t: Tensor, per: number, n0: number, nb: number): [GPUBufferBinding, number] {
  const start = n0 * per;
  const aligned = Math.floor((start * 4) / 256) * 256;
  const delta = start - aligned / 4;
  const size = Math.min(Math.ceil(((nb * per + delta) * 4) / 16) * 16, t.buffer.size - aligned);
  return [{ buffer: t.buffer, offset: aligned, size }, delta];
}

/** Images per chunk such that every per-image range (elements) fits one binding. */
function chunkImages(g: Geo, perImage: number[]): number {
  const limit = maxBindingSize();
  const per = Math.max(...perImage) * 4;
  const nb = Math.min(g.n, Math.floor((limit - 256) / per));
  if (nb < 1) throw new Error(`conv2d: one image needs a ${per}-byte binding, above the ${limit}-byte storage binding limit (${g.detail})`);
  return nb;
}

/** Calls `fn(chunk, n0, nb)` for chunks of images small enough that every per-image range fits one binding. */
function forChunks(g: Geo, perImage: number[], fn: (chunk: number, n0: number, nb: number) => void): void {
  const nb = chunkImages(g, perImage);
  for (let n0 = 0, k = 0; n0 < g.n; n0 += nb, k++) fn(k, n0, Math.min(nb, g.n - n0));
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;
const wgs = (threads: number) => Math.ceil(threads / 64);

// ---------------------------------------------------------------- taps and tiles

/** Kernel rows (or columns) taking part: weight index k0 + i·ks and input offset d0 + i·ds for i < n. */
interface Progression { n: number; k0: number; ks: number; d0: number; ds: number }

const forwardRows = (g: Geo): Progression => ({ n: g.kh, k0: 0, ks: 1, d0: -g.top, ds: g.dh });
const forwardCols = (g: Geo): Progression => ({ n: g.kw, k0: 0, ks: 1, d0: -g.left, ds: g.dw });

/**
 * The kernel rows that reach an output row from input rows ≡ `phase` (mod stride): ky with
 * (phase + pad - ky·dilation) divisible by the stride, read at offset (phase + pad - ky·dilation) / stride.
 * They form a progression (or are empty).
 */
function phaseTaps(phase: number, pad: number, k: number, d: number, s: number): Progression {
  const ks: number[] = [];
  for (let ky = 0; ky < k; ky++) if ((((phase + pad - ky * d) % s) + s) % s === 0) ks.push(ky);
  if (ks.length < 2) return { n: ks.length, k0: ks[0] ?? 0, ks: 1, d0: ks.length ? (phase + pad - ks[0] * d) / s : 0, ds: 0 };
  const step = ks[1] - ks[0];
  return { n: ks.length, k0: ks[0], ks: step, d0: (phase + pad - ks[0] * d) / s, ds: -(step * d) / s };
}

/** Stride phases of the input: the pixels (py + sh·i, px + sw·j) and the taps that reach an output pixel from them. */
function phases(g: Geo) {
  const out: { start: [number, number]; grid: [number, number]; rows: Progression; cols: Progression }[] = [];
  for (let py = 0; py < Math.min(g.sh, g.h); py++) {
    for (let px = 0; px < Math.min(g.sw, g.w); px++) {
      out.push({
        start: [py, px], grid: [Math.ceil((g.h - py) / g.sh), Math.ceil((g.w - px) / g.sw)],
        rows: phaseTaps(py, g.top, g.kh, g.dh, g.sh), cols: phaseTaps(px, g.left, g.kw, g.dw, g.sw),
      });
    }
  }
  return out;
}

/** Register tile and subgroup use of the implicit GEMM for `cout` output channels per group. */
function gemmTiles(cout: number) {
  const subgroups = deviceInfo().subgroups;
  return { tileO: cout <= 4 ? 4 : cout <= 8 ? 8 : 16, tileP: 4, subgroups, channelMultiple: subgroups ? SUBGROUP : 4 };
}

// ---------------------------------------------------------------- packing and weights

/** Packs images [n0, n0 + nb) of NCHW `t` (cin channels per group, hw pixels) into `dst`; returns the packed range. */
function pack(g: Geo, t: Tensor, cin: number, hw: number, cinPad: number, dst: Tensor, n0: number, nb: number): GPUBufferBinding {
  const [src, aOff] = bindImages(t, g.groups * cin * hw, n0, nb);
  const range = { buffer: dst.buffer, offset: 0, size: nb * g.groups * hw * cinPad * 4 };
  const uniforms = PACK_U.pack({ aOff, nb, cin, hw, c4: cinPad / 4, groups: g.groups });
  dispatch({ name: 'conv2d_pack', detail: g.detail, code: packKernel(), workgroups: wgs((nb * g.groups * hw * cinPad) / 4), buffers: [src, range], uniforms });
  return range;
}

/** The weight laid out for the GEMM: [group][tap][reduction channel, padded to rpad][output channel, padded to pad]. */
function arrange(w: Tensor, g: Geo, mode: 'forward' | 'data', rpad: number, pad: number): Tensor {
  const total = g.groups * g.kh * g.kw * rpad * pad;
  const wt = Tensor.empty([total], 'conv2d weights');
  const uniforms = ARRANGE_U.pack({ opg: g.opg, cpg: g.cpg, kk: g.kh * g.kw, rpad, pad, total });
  dispatch({ name: 'conv2d_arrange_weights', detail: g.detail, code: arrangeWeightsKernel(mode), workgroups: wgs(total), buffers: [w.buffer, wt.buffer], uniforms });
  return wt;
}

/**
 * Runs the implicit GEMM over chunks: A (NCHW, `cin` channels per group on an ha×wa image) is packed,
 * then each grid in `grids` is computed into B (cout channels per group on hb×wb).
 */
function gemm(
  name: string, g: Geo, a: Tensor, ab: [cin: number, ha: number, wa: number], b: Tensor, bb: [cout: number, hb: number, wb: number],
  wt: Tensor, tiles: ReturnType<typeof gemmTiles>, cinPad: number, bias: Tensor | null,
  grids: { start: [number, number]; step: [number, number]; grid: [number, number]; inStride: [number, number]; rows: Progression; cols: Progression }[],
): void {
  const [cin, ha, wa] = ab;
  const [cout, hb, wb] = bb;
  const perPacked = g.groups * ha * wa * cinPad;
  const perB = g.groups * cout * hb * wb;
  const nbMax = chunkImages(g, [g.groups * cin * ha * wa, perPacked, perB]);
  const packed = Tensor.empty([nbMax * perPacked], 'conv2d packed operand');
  const lanes = tiles.subgroups ? SUBGROUP : 1;
  const coutPad = roundUp(cout, tiles.tileO);
  forChunks(g, [g.groups * cin * ha * wa, perPacked, perB], (_c, n0, nb) => {
    const ar = pack(g, a, cin, ha * wa, cinPad, packed, n0, nb);
    const [br, bOff] = bindImages(b, perB, n0, nb);
    for (const q of grids) {
      const blocks = Math.ceil(Math.ceil((q.grid[0] * q.grid[1]) / tiles.tileP) / lanes);
      const uniforms = GCONV_U.pack({
        bOff, nb, ha, wa, gh: q.grid[0], gw: q.grid[1], c4: cinPad / 4, cout, cs: coutPad / 4, groups: g.groups,
        hwb: hb * wb, wb, cb: g.groups * cout, blocks, tilesO: coutPad / tiles.tileO, kk: g.kh * g.kw, hasBias: bias ? 1 : 0,
        sy: q.inStride[0], sx: q.inStride[1], oy0: q.start[0], ox0: q.start[1], osy: q.step[0], osx: q.step[1],
        nky: q.rows.n, nkx: q.cols.n, kw: g.kw, ky0: q.rows.k0, kys: q.rows.ks, kx0: q.cols.k0, kxs: q.cols.ks,
        dy0: q.rows.d0, dys: q.rows.ds, dx0: q.cols.d0, dxs: q.cols.ds,
      });
      dispatch({
        name, detail: g.detail, code: gconvKernel(tiles), workgroups: wgs(nb * g.groups * (coutPad / tiles.tileO) * blocks * lanes),
        buffers: [ar, wt.buffer, (bias ?? wt).buffer, br], uniforms,
      });
    }
  });
  packed.dispose();
}

// ---------------------------------------------------------------- depthwise

/** Runs the depthwise stencil over chunks of images (A: ca channels on ha×wa, B: cb on hb×wb). */
function stencil(
  name: string, g: Geo, mode: 'forward' | 'data', a: Tensor, ab: [number, number, number], w: Tensor, bias: Tensor | null, b: Tensor, bb: [number, number, number],
  q: { start: [number, number]; step: [number, number]; grid: [number, number]; inStride: [number, number]; rows: Progression; cols: Progression },
): void {
  const [ca, ha, wa] = ab;
  const [cb, hb, wb] = bb;
  const tw = segmentWidth(q.grid[1]);
  const tilesX = Math.ceil(q.grid[1] / tw);
  const code = stencilKernel({ tw, sx: q.inStride[1], nkx: q.cols.n, dxs: q.cols.ds, mode, bias: !!bias });
  forChunks(g, [ca * ha * wa, cb * hb * wb], (_c, n0, nb) => {
    const [ar, aOff] = bindImages(a, ca * ha * wa, n0, nb);
    const [br, bOff] = bindImages(b, cb * hb * wb, n0, nb);
    const uniforms = STENCIL_U.pack({
      aOff, bOff, nb, ca, ha, wa, cb, hwb: hb * wb, wb, gh: q.grid[0], gw: q.grid[1], tilesX, mult: g.opg, kk: g.kh * g.kw, kw: g.kw,
      oy0: q.start[0], ox0: q.start[1], osy: q.step[0], osx: q.step[1], sy: q.inStride[0],
      nky: q.rows.n, ky0: q.rows.k0, kys: q.rows.ks, dy0: q.rows.d0, dys: q.rows.ds, kx0: q.cols.k0, kxs: q.cols.ks, dx0: q.cols.d0,
    });
    dispatch({ name, detail: g.detail, code, workgroups: wgs(nb * cb * q.grid[0] * tilesX), buffers: [ar, w.buffer, ...(bias ? [bias.buffer] : []), br], uniforms });
  });
}

// ---------------------------------------------------------------- the op and its gradients

function forward(x: Tensor, w: Tensor, bias: Tensor | null, g: Geo): Tensor {
  const out = Tensor.empty([g.n, g.o, g.oh, g.ow], 'conv2d');
  const grid = { start: [0, 0] as [number, number], step: [1, 1] as [number, number], grid: [g.oh, g.ow] as [number, number], inStride: [g.sh, g.sw] as [number, number], rows: forwardRows(g), cols: forwardCols(g) };
  if (g.depthwise) {
    stencil('conv2d_depthwise', g, 'forward', x, [g.c, g.h, g.w], w, bias, out, [g.o, g.oh, g.ow], grid);
    return out;
  }
  const tiles = gemmTiles(g.opg);
  const cinPad = roundUp(g.cpg, tiles.channelMultiple);
  const wt = arrange(w, g, 'forward', cinPad, roundUp(g.opg, tiles.tileO));
  gemm('conv2d', g, x, [g.cpg, g.h, g.w], out, [g.opg, g.oh, g.ow], wt, tiles, cinPad, bias, [grid]);
  wt.dispose();
  return out;
}

function backwardData(dy: Tensor, w: Tensor, g: Geo): Tensor {
  const all = phases(g);
  const ps = all.filter((p) => p.rows.n && p.cols.n).map((p) => ({ ...p, step: [g.sh, g.sw] as [number, number], inStride: [1, 1] as [number, number] }));
  const dx = ps.length < all.length ? zeros([g.n, g.c, g.h, g.w]) : Tensor.empty([g.n, g.c, g.h, g.w], 'conv2d dInput');
  if (g.depthwise) {
    for (const p of ps) stencil('conv2d_depthwise_grad_input', g, 'data', dy, [g.o, g.oh, g.ow], w, null, dx, [g.c, g.h, g.w], p);
    return dx;
  }
  const tiles = gemmTiles(g.cpg);
  const cinPad = roundUp(g.opg, tiles.channelMultiple);
  const wt = arrange(w, g, 'data', cinPad, roundUp(g.cpg, tiles.tileO));
  gemm('conv2d_grad_input', g, dy, [g.opg, g.oh, g.ow], dx, [g.cpg, g.h, g.w], wt, tiles, cinPad, null, ps);
  wt.dispose();
  return dx;
}

/** Target thread count for split reductions: enough 64-thread workgroups to occupy every worker. */
const TARGET_THREADS = 4096;

function backwardWeight(x: Tensor, dy: Tensor, g: Geo, wShape: number[]): Tensor {
  const xPer = g.c * g.h * g.w;
  const yPer = g.o * g.oh * g.ow;
  const kk = g.kh * g.kw;
  if (g.depthwise) {
    const nb = chunkImages(g, [xPer, yPer]);
    const parts = Math.max(1, Math.min(Math.ceil(TARGET_THREADS / (g.o * g.kh)), g.oh * nb));
    const tw = segmentWidth(g.ow);
    const code = dwWeightGradKernel({ tw, sx: g.sw, nkx: g.kw, dxs: g.dw });
    const partial = Tensor.empty([Math.ceil(g.n / nb) * parts, g.o * kk], 'conv2d dWeight partials');
    forChunks(g, [xPer, yPer], (chunk, n0, nbc) => {
      const [xb, aOff] = bindImages(x, xPer, n0, nbc);
      const [yb, bOff] = bindImages(dy, yPer, n0, nbc);
      const uniforms = DW_WGRAD_U.pack({
        aOff, bOff, nb: nbc, slot: chunk * parts, c: g.c, h: g.h, w: g.w, o: g.o, oh: g.oh, ow: g.ow, tilesX: Math.ceil(g.ow / tw),
        mult: g.opg, kh: g.kh, kw: g.kw, kk, sy: g.sh, dh: g.dh, top: g.top, left: g.left, parts,
      });
      dispatch({ name: 'conv2d_depthwise_grad_weight', detail: g.detail, code, workgroups: wgs(g.o * g.kh * parts), buffers: [xb, yb, partial.buffer], uniforms });
    });
    return reduceRows(partial, wShape);
  }
  const { tileO } = gemmTiles(g.opg);
  const cpgPad = roundUp(g.cpg, 4);
  const opgPad = roundUp(g.opg, tileO);
  const sizes = [xPer, yPer, g.groups * g.h * g.w * cpgPad, g.groups * g.oh * g.ow * opgPad];
  const nb = chunkImages(g, sizes);
  const threads = weightGradThreads(tileO, g.groups, opgPad, cpgPad, kk);
  const parts = Math.max(1, Math.min(Math.ceil(TARGET_THREADS / threads), g.oh * nb));
  const partial = Tensor.empty([Math.ceil(g.n / nb) * parts, g.o * g.cpg * kk], 'conv2d dWeight partials');
  const xPacked = Tensor.empty([nb * sizes[2]], 'conv2d packed input');
  const yPacked = Tensor.empty([nb * sizes[3]], 'conv2d packed gradient');
  const code = weightGradKernel(tileO);
  forChunks(g, sizes, (chunk, n0, nbc) => {
    const xa = pack(g, x, g.cpg, g.h * g.w, cpgPad, xPacked, n0, nbc);
    const ya = pack(g, dy, g.opg, g.oh * g.ow, opgPad, yPacked, n0, nbc);
    const uniforms = WGRAD_U.pack({
      nb: nbc, slot: chunk * parts, h: g.h, w: g.w, oh: g.oh, ow: g.ow, c4: cpgPad / 4, o4: opgPad / 4, kw: g.kw, kk,
      sy: g.sh, sx: g.sw, dh: g.dh, dw: g.dw, top: g.top, left: g.left, opg: g.opg, cpg: g.cpg, groups: g.groups,
      tilesO: opgPad / tileO, parts,
    });
    dispatch({ name: 'conv2d_grad_weight', detail: g.detail, code, workgroups: wgs(threads * parts), buffers: [xa, ya, partial.buffer], uniforms });
  });
  xPacked.dispose();
  yPacked.dispose();
  return reduceRows(partial, wShape);
}

/** Sums a [parts, ...] partial tensor over its first dim into `shape` (consuming it). */
function reduceRows(partial: Tensor, shape: number[]): Tensor {
  const s = partial.shape[0] === 1 ? partial : sum(partial, 0);
  const out = Tensor.view(s, shape);
  s.dispose();
  partial.dispose();
  return out;
}

function backwardBias(dy: Tensor, g: Geo): Tensor {
  const pixels = g.oh * g.ow;
  const yPer = g.o * pixels;
  const parts = Math.max(1, Math.min(Math.ceil(TARGET_THREADS / (g.n * g.o)), Math.ceil(pixels / 256)));
  const partial = Tensor.empty([g.n * parts, g.o], 'conv2d dBias partials');
  forChunks(g, [yPer], (_c, n0, nb) => {
    const [yb, bOff] = bindImages(dy, yPer, n0, nb);
    const uniforms = BIAS_U.pack({ bOff, nb, slot: n0, o: g.o, pixels, parts, seg: Math.ceil(pixels / parts) });
    dispatch({ name: 'conv2d_grad_bias', detail: g.detail, code: biasGradKernel(), workgroups: wgs(nb * g.o * parts), buffers: [yb, partial.buffer], uniforms });
  });
  return reduceRows(partial, [g.o]);
}

/**
 * 2-D convolution (cross-correlation) like `torch.nn.functional.conv2d`: input [N, C, H, W],
 * weight [out, C/groups, kh, kw], optional bias [out]; returns [N, out, OH, OW]. Differentiable in
 * all three. `groups = C` (depthwise, out = C·multiplier) runs on specialised kernels.
 */
export function conv2d(input: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const b = bias ?? null;
  const g = geometry(input, weight, b, opts);
  if (g.n === 0) return Tensor.empty([0, g.o, g.oh, g.ow], 'conv2d');
  const out = forward(input, weight, b, g);
  return record('conv2d', b ? [input, weight, b] : [input, weight], out, (dy) => [
    input.requiresGrad ? backwardData(dy, weight, g) : null,
    weight.requiresGrad ? backwardWeight(input, dy, g, weight.shape) : null,
    b?.requiresGrad ? backwardBias(dy, g) : null,
  ]);
}
