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
import { dispatch, maxBindingSize } from '../../tensor/device.js';
import { record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { sum, zeros } from '../../tensor/ops/index.js';
import {
  arrangeWeightsKernel, biasGradKernel, gconvKernel, gconvTileO, weightGradKernel, weightGradThreads,
  type StencilGeometry, type Tap,
} from '../../shaders/conv.js';
import { dwWeightGradKernel, stencilKernel } from '../../shaders/depthwise.js';

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

/** Calls `fn(chunk, n0, nb)` for chunks of images small enough that every per-image tensor range fits one binding. */
function forChunks(g: Geo, perImage: number[], fn: (chunk: number, n0: number, nb: number) => void): void {
  const limit = maxBindingSize();
  const per = Math.max(...perImage) * 4;
  const nb = Math.min(g.n, Math.floor((limit - 256) / per));
  if (nb < 1) throw new Error(`conv2d: one image needs a ${per}-byte binding, above the ${limit}-byte storage binding limit (${g.detail})`);
  for (let n0 = 0, k = 0; n0 < g.n; n0 += nb, k++) fn(k, n0, Math.min(nb, g.n - n0));
}

/** Images per chunk (for sizing partial sums). */
const chunkCount = (g: Geo, perImage: number[]) => {
  const nb = Math.min(g.n, Math.floor((maxBindingSize() - 256) / (Math.max(...perImage) * 4)));
  return nb < 1 ? 1 : Math.ceil(g.n / nb);
};

/** Runs a stencil-like kernel (bindings A, ...mids, B, uniforms) over chunks of images. */
function runStencil(name: string, g: Geo, k: { code: string; perImage: number }, a: Tensor, aPer: number, mids: Tensor[], b: Tensor, bPer: number): void {
  forChunks(g, [aPer, bPer], (_c, n0, nb) => {
    const [ab, aOff] = bindImages(a, aPer, n0, nb);
    const [bb, bOff] = bindImages(b, bPer, n0, nb);
    dispatch({
      name, detail: g.detail, code: k.code, workgroups: Math.ceil((nb * k.perImage) / 64),
      buffers: [ab, ...mids.map((m) => m.buffer), bb], uniforms: new Uint32Array([aOff, bOff, nb, 0]),
    });
  });
}

// ---------------------------------------------------------------- kernels wired to tensors

const forwardTaps = (g: Geo): Tap[] =>
  Array.from({ length: g.kh * g.kw }, (_, t) => ({ w: t, dy: Math.floor(t / g.kw) * g.dh - g.top, dx: (t % g.kw) * g.dw - g.left }));

/** Stride phases of the input: the pixels (py + sh·i, px + sw·j) and the taps that reach an output pixel from them. */
function phases(g: Geo) {
  const out: { start: [number, number]; grid: [number, number]; taps: Tap[] }[] = [];
  for (let py = 0; py < Math.min(g.sh, g.h); py++) {
    for (let px = 0; px < Math.min(g.sw, g.w); px++) {
      const taps: Tap[] = [];
      for (let ky = 0; ky < g.kh; ky++) {
        const ry = py + g.top - ky * g.dh;
        if (((ry % g.sh) + g.sh) % g.sh) continue;
        for (let kx = 0; kx < g.kw; kx++) {
          const rx = px + g.left - kx * g.dw;
          if (((rx % g.sw) + g.sw) % g.sw === 0) taps.push({ w: ky * g.kw + kx, dy: ry / g.sh, dx: rx / g.sw });
        }
      }
      out.push({ start: [py, px], grid: [Math.ceil((g.h - py) / g.sh), Math.ceil((g.w - px) / g.sw)], taps });
    }
  }
  return out;
}

function arrange(w: Tensor, g: Geo, mode: 'forward' | 'data', pad: number): Tensor {
  const k = arrangeWeightsKernel({ groups: g.groups, opg: g.opg, cpg: g.cpg, kk: g.kh * g.kw, mode, pad });
  const wt = Tensor.empty([k.size], 'conv2d weights');
  dispatch({ name: 'conv2d_arrange_weights', detail: g.detail, code: k.code, workgroups: k.workgroups, buffers: [w.buffer, wt.buffer] });
  return wt;
}

function forward(x: Tensor, w: Tensor, bias: Tensor | null, g: Geo): Tensor {
  const out = Tensor.empty([g.n, g.o, g.oh, g.ow], 'conv2d');
  const geo: StencilGeometry = {
    aShape: [g.c, g.h, g.w], bShape: [g.o, g.oh, g.ow], grid: [g.oh, g.ow], outStart: [0, 0], outStep: [1, 1],
    inStride: [g.sh, g.sw], taps: forwardTaps(g),
  };
  const aPer = g.c * g.h * g.w;
  const bPer = g.o * g.oh * g.ow;
  const mids = bias ? [bias] : [];
  if (g.depthwise) {
    const k = stencilKernel({ ...geo, mode: 'forward', mult: g.opg, kh: g.kh, kw: g.kw, bias: !!bias });
    runStencil('conv2d_depthwise', g, k, x, aPer, [w, ...mids], out, bPer);
    return out;
  }
  const tileO = gconvTileO(g.opg);
  const wt = arrange(w, g, 'forward', Math.ceil(g.opg / tileO) * tileO);
  const k = gconvKernel({ ...geo, groups: g.groups, cin: g.cpg, cout: g.opg, tileO, kk: g.kh * g.kw, bias: !!bias });
  runStencil('conv2d', g, k, x, aPer, [wt, ...mids], out, bPer);
  wt.dispose();
  return out;
}

function backwardData(dy: Tensor, w: Tensor, g: Geo): Tensor {
  const ps = phases(g);
  const dx = ps.some((p) => !p.taps.length) ? zeros([g.n, g.c, g.h, g.w]) : Tensor.empty([g.n, g.c, g.h, g.w], 'conv2d dInput');
  const aPer = g.o * g.oh * g.ow;
  const bPer = g.c * g.h * g.w;
  const tileO = gconvTileO(g.cpg);
  const wt = g.depthwise ? null : arrange(w, g, 'data', Math.ceil(g.cpg / tileO) * tileO);
  for (const p of ps) {
    if (!p.taps.length) continue;
    const geo: StencilGeometry = {
      aShape: [g.o, g.oh, g.ow], bShape: [g.c, g.h, g.w], grid: p.grid, outStart: p.start, outStep: [g.sh, g.sw], inStride: [1, 1], taps: p.taps,
    };
    if (wt) {
      const k = gconvKernel({ ...geo, groups: g.groups, cin: g.opg, cout: g.cpg, tileO, kk: g.kh * g.kw, bias: false });
      runStencil('conv2d_grad_input', g, k, dy, aPer, [wt], dx, bPer);
    } else {
      const k = stencilKernel({ ...geo, mode: 'data', mult: g.opg, kh: g.kh, kw: g.kw, bias: false });
      runStencil('conv2d_depthwise_grad_input', g, k, dy, aPer, [w], dx, bPer);
    }
  }
  wt?.dispose();
  return dx;
}

/** Target thread count for split reductions: enough 64-thread workgroups to occupy every worker. */
const TARGET_THREADS = 4096;

function backwardWeight(x: Tensor, dy: Tensor, g: Geo, wShape: number[]): Tensor {
  const xPer = g.c * g.h * g.w;
  const yPer = g.o * g.oh * g.ow;
  const kk = g.kh * g.kw;
  const chunks = chunkCount(g, [xPer, yPer]);
  const threads = g.depthwise ? g.o * g.kh : weightGradThreads(g.groups, g.opg, g.cpg, kk);
  const parts = Math.max(1, Math.min(Math.ceil(TARGET_THREADS / threads), g.oh * Math.ceil(g.n / chunks)));
  const k = g.depthwise
    ? dwWeightGradKernel({ xShape: [g.c, g.h, g.w], yShape: [g.o, g.oh, g.ow], mult: g.opg, kh: g.kh, kw: g.kw, inStride: [g.sh, g.sw], taps: forwardTaps(g), parts })
    : weightGradKernel({
      groups: g.groups, opg: g.opg, cpg: g.cpg, xShape: [g.c, g.h, g.w], yShape: [g.o, g.oh, g.ow], kh: g.kh, kw: g.kw,
      stride: [g.sh, g.sw], dilation: [g.dh, g.dw], pad: [g.top, g.left], parts,
    });
  const partial = Tensor.empty([chunks * parts, g.o * g.cpg * kk], 'conv2d dWeight partials');
  forChunks(g, [xPer, yPer], (chunk, n0, nb) => {
    const [xb, xOff] = bindImages(x, xPer, n0, nb);
    const [yb, yOff] = bindImages(dy, yPer, n0, nb);
    dispatch({
      name: g.depthwise ? 'conv2d_depthwise_grad_weight' : 'conv2d_grad_weight', detail: g.detail, code: k.code, workgroups: k.workgroups,
      buffers: [xb, yb, partial.buffer], uniforms: new Uint32Array([xOff, yOff, nb, chunk * parts]),
    });
  });
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
  const k = biasGradKernel(g.o, pixels, parts);
  const partial = Tensor.empty([g.n * parts, g.o], 'conv2d dBias partials');
  forChunks(g, [yPer], (_c, n0, nb) => {
    const [yb, yOff] = bindImages(dy, yPer, n0, nb);
    dispatch({
      name: 'conv2d_grad_bias', detail: g.detail, code: k.code, workgroups: Math.ceil((nb * k.perImage) / 64),
      buffers: [yb, partial.buffer], uniforms: new Uint32Array([0, yOff, nb, n0]),
    });
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
