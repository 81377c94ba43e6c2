/** 2-D max, average and adaptive average pooling over [N, C, H, W] (or [C, H, W]) input, PyTorch semantics. */
import { dispatch } from '../../tensor/device.js';
import { bindRange, fitsBinding, forChunks } from '../../tensor/split.js';
import { WG } from '../../shaders/common.js';
import { record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import {
  adaptiveAvgPoolBackwardKernel, adaptiveAvgPoolKernel, avgPoolBackwardKernel, avgPoolKernel, maxPoolBackwardKernel,
  maxPoolKernel, type AdaptiveGeometry, type PoolGeometry,
} from '../../shaders/pool.js';

/** One size for both spatial dims, or [height, width]. */
export type Pair2 = number | [number, number];

/** Options of `maxPool2d`. */
export interface MaxPool2dOptions {
  /** Default: the kernel size. */
  stride?: Pair2;
  /** Implicit −inf padding on each side, at most half the kernel. Default 0. */
  padding?: Pair2;
  /** Spacing between window elements. Default 1. */
  dilation?: Pair2;
  /** Round the output size up (the last window must still start inside the input or the left padding). Default false. */
  ceilMode?: boolean;
}

/** Options of `avgPool2d`. */
export interface AvgPool2dOptions {
  /** Default: the kernel size. */
  stride?: Pair2;
  /** Implicit zero padding on each side, at most half the kernel. Default 0. */
  padding?: Pair2;
  /** Default false. */
  ceilMode?: boolean;
  /** Whether padded zeros count in the divisor. Default true. */
  countIncludePad?: boolean;
}

function pair(op: string, name: string, v: Pair2, min: number): [number, number] {
  const [a, b] = typeof v === 'number' ? [v, v] : v;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < min || b < min) {
    throw new Error(`${op}: ${name} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  }
  return [a, b];
}

function planesOf(op: string, x: Tensor): { planes: number; h: number; w: number } {
  if (x.ndim !== 3 && x.ndim !== 4) throw new Error(`${op}: input must be [N, C, H, W] or [C, H, W], got [${x.shape}]`);
  const [h, w] = x.shape.slice(-2);
  return { planes: x.shape.slice(0, -2).reduce((a, b) => a * b, 1), h, w };
}

/** PyTorch's pooling output size; in ceil mode a last window starting past the input and left padding is dropped. */
function outSize(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = size + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= size + p) out--;
  return out;
}

function geometry(
  op: string, x: Tensor, kernelSize: Pair2, stride: Pair2 | undefined, padding: Pair2, dilation: Pair2, ceil: boolean,
): PoolGeometry {
  const { planes, h, w } = planesOf(op, x);
  const [kh, kw] = pair(op, 'kernelSize', kernelSize, 1);
  const [sh, sw] = pair(op, 'stride', stride ?? kernelSize, 1);
  const [ph, pw] = pair(op, 'padding', padding, 0);
  const [dh, dw] = pair(op, 'dilation', dilation, 1);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new Error(`${op}: padding [${ph}, ${pw}] must be at most half the kernel size [${kh}, ${kw}]`);
  }
  const oh = outSize(h, kh, sh, ph, dh, ceil);
  const ow = outSize(w, kw, sw, pw, dw, ceil);
  if (oh < 1 || ow < 1) {
    throw new Error(`${op}: input [${x.shape}] is too small for kernel [${kh}, ${kw}] (dilation [${dh}, ${dw}], padding [${ph}, ${pw}]): output would be ${oh}x${ow}`);
  }
  return { planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw };
}

const outShapeOf = (x: Tensor, g: AdaptiveGeometry) => [...x.shape.slice(0, -2), g.oh, g.ow];
const detailOf = (x: Tensor, g: PoolGeometry) => `[${x.shape}] k=[${g.kh},${g.kw}] s=[${g.sh},${g.sw}] p=[${g.ph},${g.pw}]`;

/** Loads per thread of the input-sized tensors of the 1x1 adaptive kernels (vec4 when a plane divides by 4). */
const adaptiveVec = (g: AdaptiveGeometry) => (g.oh === 1 && g.ow === 1 && (g.h * g.w) % 4 === 0 ? 4 : 1);

/**
 * Records a pooling kernel (`make(split)`) over every plane, or, when a tensor is larger than one
 * binding, over chunks of planes. `bufs` are the bindings in order, each input-sized ('in': H·W per
 * plane, read `inVec` floats per load) or output-sized ('out': OH·OW per plane); `perPlane` threads per plane.
 */
function run(
  name: string, detail: string, make: (split: boolean) => { code: string; workgroups: number }, g: AdaptiveGeometry,
  bufs: [Tensor, 'in' | 'out'][], perPlane: number, inVec = 1,
): void {
  if (fitsBinding(...bufs.map(([t]) => t))) {
    const k = make(false);
    dispatch({ name, detail, code: k.code, workgroups: k.workgroups, buffers: bufs.map(([t]) => t.buffer) });
    return;
  }
  const code = make(true).code;
  const per = { in: g.h * g.w, out: g.oh * g.ow };
  forChunks(name, detail, g.planes, [per.in, per.out], (_chunk, p0, np) => {
    const offs = { in: 0, out: 0 };
    const buffers = bufs.map(([t, role]) => {
      const [b, delta] = bindRange(t, p0 * per[role], np * per[role]);
      offs[role] = role === 'in' ? delta / inVec : delta;
      return b;
    });
    dispatch({ name, detail, code, workgroups: Math.ceil((np * perPlane) / WG), buffers, uniforms: new Uint32Array([offs.in, offs.out, np * perPlane]) });
  });
}

/**
 * `F.max_pool2d`: padding acts as −inf. The backward sends each output's gradient to the first
 * maximum of its window (positions recorded in the forward pass).
 */
export function maxPool2d(x: Tensor, kernelSize: Pair2, opts: MaxPool2dOptions = {}): Tensor {
  const op = 'maxPool2d';
  const g = geometry(op, x, kernelSize, opts.stride, opts.padding ?? 0, opts.dilation ?? 1, opts.ceilMode ?? false);
  const detail = detailOf(x, g);
  const out = Tensor.empty(outShapeOf(x, g), op);
  const idx = Tensor.empty(out.shape, 'maxPool2d indices');
  if (out.numel) run(op, detail, (s) => maxPoolKernel(g, s), g, [[x, 'in'], [out, 'out'], [idx, 'out']], g.oh * g.ow);
  record(op, [x], out, (grad) => {
    const dx = Tensor.empty(x.shape, 'maxPool2d dx');
    if (dx.numel) run('maxPool2d_backward', detail, (s) => maxPoolBackwardKernel(g, s), g, [[grad, 'out'], [idx, 'out'], [dx, 'in']], g.h * g.w);
    return [dx];
  });
  if (!out.gradFn) idx.dispose();
  return out;
}

/** `F.avg_pool2d` with zero padding and PyTorch's divisor rules. */
export function avgPool2d(x: Tensor, kernelSize: Pair2, opts: AvgPool2dOptions = {}): Tensor {
  const op = 'avgPool2d';
  const g = geometry(op, x, kernelSize, opts.stride, opts.padding ?? 0, 1, opts.ceilMode ?? false);
  const includePad = opts.countIncludePad ?? true;
  const detail = detailOf(x, g);
  const out = Tensor.empty(outShapeOf(x, g), op);
  if (out.numel) run(op, detail, (s) => avgPoolKernel(g, includePad, s), g, [[x, 'in'], [out, 'out']], g.oh * g.ow);
  return record(op, [x], out, (grad) => {
    const dx = Tensor.empty(x.shape, 'avgPool2d dx');
    if (dx.numel) run('avgPool2d_backward', detail, (s) => avgPoolBackwardKernel(g, includePad, s), g, [[grad, 'out'], [dx, 'in']], g.h * g.w);
    return [dx];
  });
}

/**
 * `F.adaptive_avg_pool2d`: output cell i of n over an input of size s averages
 * [floor(i·s/n), ceil((i+1)·s/n)). Any output size, larger than the input included; 1 is global average pooling.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair2): Tensor {
  const op = 'adaptiveAvgPool2d';
  const { planes, h, w } = planesOf(op, x);
  const [oh, ow] = pair(op, 'outputSize', outputSize, 1);
  if (h < 1 || w < 1) throw new Error(`${op}: input [${x.shape}] has an empty spatial dim`);
  const g: AdaptiveGeometry = { planes, h, w, oh, ow };
  const detail = `[${x.shape}] -> [${oh}, ${ow}]`;
  const out = Tensor.empty(outShapeOf(x, g), op);
  const vec = adaptiveVec(g);
  if (out.numel) run(op, detail, (s) => adaptiveAvgPoolKernel(g, s), g, [[x, 'in'], [out, 'out']], oh * ow, vec);
  return record(op, [x], out, (grad) => {
    const dx = Tensor.empty(x.shape, 'adaptiveAvgPool2d dx');
    if (dx.numel) run('adaptiveAvgPool2d_backward', detail, (s) => adaptiveAvgPoolBackwardKernel(g, s), g, [[grad, 'out'], [dx, 'in']], (h * w) / vec, vec);
    return [dx];
  });
}
