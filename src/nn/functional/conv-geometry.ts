/**
 * What the conv2d kernels share: option checking and geometry, the kernel taps that reach an output
 * pixel (per stride phase for the data gradient), chunks of images under the storage-binding limit
 * and the sum of split partial results.
 */
import { Tensor } from '../../tensor/tensor.js';
import { sum } from '../../tensor/ops/index.js';
import { bindRange, forChunks, itemsPerChunk } from '../../tensor/split.js';

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

/** Sizes, strides, pads and a description of one convolution, checked. */
export interface Geo {
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

/** Checks the operands and options of a conv2d call and derives its geometry; errors name the shapes. */
export function geometry(x: Tensor, wt: Tensor, bias: Tensor | null, opts: Conv2dOptions): Geo {
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
export const bindImages = (t: Tensor, per: number, n0: number, nb: number) => bindRange(t, n0 * per, nb * per);

/** Images per chunk such that every per-image range (elements) fits one binding. */
export const imagesPerChunk = (g: Geo, perImage: number[]) => itemsPerChunk('conv2d', g.detail, g.n, perImage);

/** Calls `fn(chunk, n0, nb)` for chunks of images small enough that every per-image range (elements) fits one binding. */
export function forImageChunks(g: Geo, perImage: number[], fn: (chunk: number, n0: number, nb: number) => void): void {
  forChunks('conv2d', g.detail, g.n, perImage, fn);
}

export const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;
/** 64-thread workgroups for `threads` threads. */
export const wgs = (threads: number) => Math.ceil(threads / 64);
/** Target thread count for split reductions: enough 64-thread workgroups to occupy every worker. */
export const TARGET_THREADS = 4096;

// ---------------------------------------------------------------- taps

/** Kernel rows (or columns) taking part: weight index k0 + i·ks and input offset d0 + i·ds for i < n. */
export interface Progression { n: number; k0: number; ks: number; d0: number; ds: number }

export const forwardRows = (g: Geo): Progression => ({ n: g.kh, k0: 0, ks: 1, d0: -g.top, ds: g.dh });
export const forwardCols = (g: Geo): Progression => ({ n: g.kw, k0: 0, ks: 1, d0: -g.left, ds: g.dw });

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
export function phases(g: Geo) {
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

/** The output pixels one kernel launch computes: `grid` pixels from `start` in steps of `step`, read from the input with `inStride`. */
export interface OutputGrid { start: [number, number]; step: [number, number]; grid: [number, number]; inStride: [number, number]; rows: Progression; cols: Progression }

/** Sums a [parts, ...] partial tensor over its first dim into `shape` (consuming it). */
export function reduceRows(partial: Tensor, shape: number[]): Tensor {
  const s = partial.shape[0] === 1 ? partial : sum(partial, 0);
  const out = Tensor.view(s, shape);
  s.dispose();
  partial.dispose();
  return out;
}
