import { arr, type Arr } from './array.js';

/** A size given once for both spatial dims or as [height, width]. */
export type Pair = number | readonly [number, number];

/** Explicit padding [top, bottom, left, right]. */
export type Padding4 = readonly [number, number, number, number];

/** Hyper-parameters of conv2d, as in `torch.nn.functional.conv2d`. */
export interface Conv2dOptions {
  /** Default 1. */
  stride?: Pair;
  /**
   * Default 0. A number pads all four sides, [ph, pw] pads top/bottom by ph and
   * left/right by pw, [top, bottom, left, right] is explicit (asymmetric "same"
   * pads), and 'same' is PyTorch's `padding='same'` (stride 1 only).
   */
  padding?: number | readonly [number, number] | Padding4 | 'same';
  /** Default 1. */
  dilation?: Pair;
  /** Default 1. */
  groups?: number;
}

function pair(p: Pair, what: string): [number, number] {
  const [a, b] = typeof p === 'number' ? [p, p] : p;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 1 || b < 1) {
    throw new Error(`${what} must be positive integers, got ${JSON.stringify(p)}`);
  }
  return [a, b];
}

/** Spatial output size of a window op: floor((in + padding - dilation*(k-1) - 1) / stride) + 1. */
export function convOutputSize(size: number, k: number, stride: number, padBefore: number, padAfter: number, dilation = 1): number {
  return Math.floor((size + padBefore + padAfter - dilation * (k - 1) - 1) / stride) + 1;
}

/**
 * TensorFlow-style static "same" padding (EfficientNet-PyTorch's
 * Conv2dStaticSamePadding): out = ceil(in / stride) and the total pad
 * max((out-1)*stride + (k-1)*dilation + 1 - in, 0) is split with the extra
 * pixel at the bottom/right. Returns [top, bottom, left, right].
 */
export function samePadding(inH: number, inW: number, kh: number, kw: number, stride: Pair = 1, dilation: Pair = 1): Padding4 {
  const [sh, sw] = pair(stride, 'samePadding: stride');
  const [dh, dw] = pair(dilation, 'samePadding: dilation');
  const total = (size: number, k: number, s: number, d: number): number =>
    Math.max((Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0);
  const ph = total(inH, kh, sh, dh);
  const pw = total(inW, kw, sw, dw);
  const top = Math.floor(ph / 2);
  const left = Math.floor(pw / 2);
  return [top, ph - top, left, pw - left];
}

/**
 * PyTorch's `padding='same'` for stride 1: total pad dilation*(k-1) per dim,
 * left = total // 2, the remainder on the right/bottom. Returns [top, bottom, left, right].
 */
export function torchSamePadding(kh: number, kw: number, dilation: Pair = 1): Padding4 {
  const [dh, dw] = pair(dilation, 'torchSamePadding: dilation');
  const th = dh * (kh - 1);
  const tw = dw * (kw - 1);
  return [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
}

/** Every size a conv2d needs, checked against each other. */
export interface ConvGeometry {
  n: number; c: number; h: number; w: number;
  o: number; cPerGroup: number; oPerGroup: number; groups: number;
  kh: number; kw: number; sh: number; sw: number; dh: number; dw: number;
  top: number; bottom: number; left: number; right: number;
  oh: number; ow: number;
}

/** Resolves and validates conv2d sizes for input [N, C, H, W] and weight [O, C/groups, KH, KW]. */
export function convGeometry(xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): ConvGeometry {
  if (xShape.length !== 4) throw new Error(`conv2d: input must be [N, C, H, W], got [${xShape.join(', ')}]`);
  if (wShape.length !== 4) throw new Error(`conv2d: weight must be [out, in/groups, kh, kw], got [${wShape.join(', ')}]`);
  const [n, c, h, w] = xShape;
  const [o, cPerGroup, kh, kw] = wShape;
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0 || o % groups !== 0 || cPerGroup !== c / groups) {
    throw new Error(`conv2d: groups=${groups} does not fit input channels ${c} and weight [${wShape.join(', ')}]`);
  }
  const [sh, sw] = pair(opts.stride ?? 1, 'conv2d: stride');
  const [dh, dw] = pair(opts.dilation ?? 1, 'conv2d: dilation');
  const p = opts.padding ?? 0;
  let pads: Padding4;
  if (p === 'same') {
    if (sh !== 1 || sw !== 1) throw new Error(`conv2d: padding='same' needs stride 1, got [${sh}, ${sw}]`);
    pads = torchSamePadding(kh, kw, [dh, dw]);
  } else if (typeof p === 'number') {
    pads = [p, p, p, p];
  } else if (p.length === 2) {
    pads = [p[0], p[0], p[1], p[1]];
  } else {
    pads = p as Padding4;
  }
  if (pads.length !== 4 || pads.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new Error(`conv2d: padding must be non-negative integers, got ${JSON.stringify(p)}`);
  }
  const [top, bottom, left, right] = pads;
  const oh = convOutputSize(h, kh, sh, top, bottom, dh);
  const ow = convOutputSize(w, kw, sw, left, right, dw);
  if (oh < 1 || ow < 1) {
    throw new Error(`conv2d: input [${xShape.join(', ')}] with padding ${JSON.stringify(pads)} is smaller than the dilated kernel [${kh}, ${kw}]`);
  }
  return { n, c, h, w, o, cPerGroup, oPerGroup: o / groups, groups, kh, kw, sh, sw, dh, dw, top, bottom, left, right, oh, ow };
}

/**
 * Visits every (output element, weight tap) pair that multiplies an in-bounds
 * input element: the definition of conv2d that forward and backward share.
 * Offsets are flat indices into input, weight and output.
 */
function forEachTap(g: ConvGeometry, visit: (xi: number, wi: number, oi: number) => void): void {
  for (let b = 0; b < g.n; b++) {
    for (let oc = 0; oc < g.o; oc++) {
      const firstIn = Math.floor(oc / g.oPerGroup) * g.cPerGroup;
      for (let y = 0; y < g.oh; y++) {
        for (let x = 0; x < g.ow; x++) {
          const oi = ((b * g.o + oc) * g.oh + y) * g.ow + x;
          for (let ci = 0; ci < g.cPerGroup; ci++) {
            for (let ky = 0; ky < g.kh; ky++) {
              const iy = y * g.sh - g.top + ky * g.dh;
              if (iy < 0 || iy >= g.h) continue; // a zero of the padding
              for (let kx = 0; kx < g.kw; kx++) {
                const ix = x * g.sw - g.left + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                const xi = ((b * g.c + firstIn + ci) * g.h + iy) * g.w + ix;
                const wi = ((oc * g.cPerGroup + ci) * g.kh + ky) * g.kw + kx;
                visit(xi, wi, oi);
              }
            }
          }
        }
      }
    }
  }
}

function checkBias(bias: Arr | undefined, o: number): void {
  if (bias !== undefined && (bias.shape.length !== 1 || bias.shape[0] !== o)) {
    throw new Error(`conv2d: bias must be [${o}], got [${bias.shape.join(', ')}]`);
  }
}

/**
 * 2-D convolution (cross-correlation, as in PyTorch), NCHW input and weight
 * [out, in/groups, kh, kw]. Depthwise convs are groups = in channels, with
 * out = multiplier * in.
 */
export function conv2d(x: Arr, weight: Arr, bias?: Arr, opts: Conv2dOptions = {}): Arr {
  const g = convGeometry(x.shape, weight.shape, opts);
  checkBias(bias, g.o);
  const out = arr([g.n, g.o, g.oh, g.ow]);
  if (bias !== undefined) {
    for (let i = 0; i < out.data.length; i++) out.data[i] = bias.data[Math.floor(i / (g.oh * g.ow)) % g.o];
  }
  forEachTap(g, (xi, wi, oi) => {
    out.data[oi] += x.data[xi] * weight.data[wi];
  });
  return out;
}

/** Gradients of conv2d w.r.t. its input, weight and bias. */
export interface Conv2dGrads {
  dInput: Arr;
  dWeight: Arr;
  dBias: Arr;
}

/**
 * Gradients of `conv2d(x, weight, bias, opts)` given dOut = dL/dOutput,
 * straight from the definition: each product x·w that fed an output sends
 * dOut·w back to that input element and dOut·x to that weight.
 */
export function conv2dBackward(x: Arr, weight: Arr, dOut: Arr, opts: Conv2dOptions = {}): Conv2dGrads {
  const g = convGeometry(x.shape, weight.shape, opts);
  const outShape = [g.n, g.o, g.oh, g.ow];
  if (dOut.shape.join() !== outShape.join()) {
    throw new Error(`conv2dBackward: dOut must be [${outShape.join(', ')}], got [${dOut.shape.join(', ')}]`);
  }
  const dInput = arr(x.shape);
  const dWeight = arr(weight.shape);
  const dBias = arr([g.o]);
  for (let i = 0; i < dOut.data.length; i++) dBias.data[Math.floor(i / (g.oh * g.ow)) % g.o] += dOut.data[i];
  forEachTap(g, (xi, wi, oi) => {
    dInput.data[xi] += dOut.data[oi] * weight.data[wi];
    dWeight.data[wi] += dOut.data[oi] * x.data[xi];
  });
  return { dInput, dWeight, dBias };
}
