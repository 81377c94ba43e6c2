import { arr, type Arr } from './array.js';
import type { Pair } from './conv.js';

/** Hyper-parameters shared by max and average 2-D pooling (PyTorch names). */
export interface Pool2dOptions {
  kernelSize: Pair;
  /** Defaults to kernelSize. */
  stride?: Pair;
  /** Symmetric implicit padding, at most half the kernel. Default 0. */
  padding?: Pair;
  /** Round the output size up instead of down. Default false. */
  ceilMode?: boolean;
}

/** Options of avgPool2d. */
export interface AvgPool2dOptions extends Pool2dOptions {
  /** Whether padded zeros count in the divisor. Default true (PyTorch's default). */
  countIncludePad?: boolean;
}

function pair(p: Pair, what: string, min: number): [number, number] {
  const [a, b] = typeof p === 'number' ? [p, p] : p;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < min || b < min) {
    throw new Error(`${what} must be integers >= ${min}, got ${JSON.stringify(p)}`);
  }
  return [a, b];
}

/**
 * PyTorch's pooling output size: floor or ceil of (in + 2p - k) / s, plus 1;
 * in ceil mode the last window must still start inside the input or the left
 * padding, otherwise it is dropped.
 */
export function poolOutputSize(size: number, k: number, stride: number, padding: number, ceilMode: boolean): number {
  const span = size + 2 * padding - k;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padding) out--;
  return out;
}

interface PoolGeometry {
  n: number; c: number; h: number; w: number;
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
  oh: number; ow: number;
}

function nchw(shape: readonly number[], what: string): [number, number, number, number] {
  if (shape.length !== 4) throw new Error(`${what}: input must be [N, C, H, W], got [${shape.join(', ')}]`);
  return [shape[0], shape[1], shape[2], shape[3]];
}

function poolGeometry(shape: readonly number[], opts: Pool2dOptions, what: string): PoolGeometry {
  const [n, c, h, w] = nchw(shape, what);
  const [kh, kw] = pair(opts.kernelSize, `${what}: kernelSize`, 1);
  const [sh, sw] = pair(opts.stride ?? opts.kernelSize, `${what}: stride`, 1);
  const [ph, pw] = pair(opts.padding ?? 0, `${what}: padding`, 0);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new Error(`${what}: padding [${ph}, ${pw}] must be at most half the kernel [${kh}, ${kw}]`);
  }
  const ceil = opts.ceilMode ?? false;
  const oh = poolOutputSize(h, kh, sh, ph, ceil);
  const ow = poolOutputSize(w, kw, sw, pw, ceil);
  if (oh < 1 || ow < 1) throw new Error(`${what}: input [${shape.join(', ')}] is smaller than the kernel [${kh}, ${kw}]`);
  return { n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow };
}

function checkDOut(dOut: Arr, g: PoolGeometry, outC: number, what: string): void {
  const want = [g.n, outC, g.oh, g.ow];
  if (dOut.shape.join() !== want.join()) throw new Error(`${what}: dOut must be [${want.join(', ')}], got [${dOut.shape.join(', ')}]`);
}

/**
 * Max pooling with PyTorch's indices: for each output, the flat offset
 * (iy * W + ix) within its [H, W] plane of the FIRST maximum in row-major
 * window order. Padding acts as -inf, so it is never chosen. As in
 * PyTorch's CPU kernel every NaN replaces the running max (the last NaN wins).
 */
export function maxPool2dWithIndices(x: Arr, opts: Pool2dOptions): { out: Arr; indices: Arr } {
  const g = poolGeometry(x.shape, opts, 'maxPool2d');
  const out = arr([g.n, g.c, g.oh, g.ow]);
  const indices = arr(out.shape);
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const base = plane * g.h * g.w;
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        let best = -Infinity;
        let bestAt = -1;
        for (let iy = Math.max(oy * g.sh - g.ph, 0); iy < Math.min(oy * g.sh - g.ph + g.kh, g.h); iy++) {
          for (let ix = Math.max(ox * g.sw - g.pw, 0); ix < Math.min(ox * g.sw - g.pw + g.kw, g.w); ix++) {
            const v = x.data[base + iy * g.w + ix];
            if (bestAt < 0 || v > best || Number.isNaN(v)) {
              best = v;
              bestAt = iy * g.w + ix;
            }
          }
        }
        const oi = (plane * g.oh + oy) * g.ow + ox;
        out.data[oi] = best;
        indices.data[oi] = bestAt;
      }
    }
  }
  return { out, indices };
}

/** Max pooling (NCHW), padding with -inf, dilation 1. */
export function maxPool2d(x: Arr, opts: Pool2dOptions): Arr {
  return maxPool2dWithIndices(x, opts).out;
}

/** Gradient of maxPool2d: each dOut goes to its window's first maximum; overlaps add up. */
export function maxPool2dBackward(x: Arr, dOut: Arr, opts: Pool2dOptions): Arr {
  const g = poolGeometry(x.shape, opts, 'maxPool2dBackward');
  checkDOut(dOut, g, g.c, 'maxPool2dBackward');
  const { indices } = maxPool2dWithIndices(x, opts);
  const dInput = arr(x.shape);
  for (let oi = 0; oi < dOut.data.length; oi++) {
    const plane = Math.floor(oi / (g.oh * g.ow));
    dInput.data[plane * g.h * g.w + indices.data[oi]] += dOut.data[oi];
  }
  return dInput;
}

/**
 * Visits each output's window as PyTorch's avg_pool2d defines it: the valid
 * input rows/cols and the divisor (the window clipped to the padded input
 * when countIncludePad, else the number of valid input elements).
 */
function forEachAvgWindow(
  g: PoolGeometry,
  countIncludePad: boolean,
  visit: (oi: number, base: number, y0: number, y1: number, x0: number, x1: number, divisor: number) => void,
): void {
  for (let plane = 0; plane < g.n * g.c; plane++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        const ys = oy * g.sh - g.ph;
        const xs = ox * g.sw - g.pw;
        const ye = Math.min(ys + g.kh, g.h + g.ph);
        const xe = Math.min(xs + g.kw, g.w + g.pw);
        const padded = (ye - ys) * (xe - xs);
        const y0 = Math.max(ys, 0);
        const x0 = Math.max(xs, 0);
        const y1 = Math.min(ye, g.h);
        const x1 = Math.min(xe, g.w);
        const divisor = countIncludePad ? padded : (y1 - y0) * (x1 - x0);
        visit((plane * g.oh + oy) * g.ow + ox, plane * g.h * g.w, y0, y1, x0, x1, divisor);
      }
    }
  }
}

/** Average pooling (NCHW) with zero padding, PyTorch's divisor rules and ceil mode. */
export function avgPool2d(x: Arr, opts: AvgPool2dOptions): Arr {
  const g = poolGeometry(x.shape, opts, 'avgPool2d');
  const out = arr([g.n, g.c, g.oh, g.ow]);
  forEachAvgWindow(g, opts.countIncludePad ?? true, (oi, base, y0, y1, x0, x1, divisor) => {
    let s = 0;
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) s += x.data[base + iy * g.w + ix];
    out.data[oi] = s / divisor;
  });
  return out;
}

/** Gradient of avgPool2d: each dOut / divisor spreads over its window's valid inputs. */
export function avgPool2dBackward(xShape: readonly number[], dOut: Arr, opts: AvgPool2dOptions): Arr {
  const g = poolGeometry(xShape, opts, 'avgPool2dBackward');
  checkDOut(dOut, g, g.c, 'avgPool2dBackward');
  const dInput = arr(xShape);
  forEachAvgWindow(g, opts.countIncludePad ?? true, (oi, base, y0, y1, x0, x1, divisor) => {
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) dInput.data[base + iy * g.w + ix] += dOut.data[oi] / divisor;
  });
  return dInput;
}

/** PyTorch's adaptive pooling bin i of `out` over `size`: [floor(i*size/out), ceil((i+1)*size/out)). */
export function adaptiveBin(i: number, size: number, out: number): [number, number] {
  return [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)];
}

function adaptiveWindows(
  shape: readonly number[],
  outputSize: Pair,
  what: string,
  visit: (oi: number, base: number, y0: number, y1: number, x0: number, x1: number) => void,
): void {
  const [n, c, h, w] = nchw(shape, what);
  const [oh, ow] = pair(outputSize, `${what}: outputSize`, 1);
  for (let plane = 0; plane < n * c; plane++) {
    for (let oy = 0; oy < oh; oy++) {
      const [y0, y1] = adaptiveBin(oy, h, oh);
      for (let ox = 0; ox < ow; ox++) {
        const [x0, x1] = adaptiveBin(ox, w, ow);
        visit((plane * oh + oy) * ow + ox, plane * h * w, y0, y1, x0, x1);
      }
    }
  }
}

/** Adaptive average pooling to `outputSize` ([1, 1] is global average pooling). */
export function adaptiveAvgPool2d(x: Arr, outputSize: Pair): Arr {
  const [n, c, , w] = nchw(x.shape, 'adaptiveAvgPool2d');
  const [oh, ow] = pair(outputSize, 'adaptiveAvgPool2d: outputSize', 1);
  const out = arr([n, c, oh, ow]);
  adaptiveWindows(x.shape, outputSize, 'adaptiveAvgPool2d', (oi, base, y0, y1, x0, x1) => {
    let s = 0;
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) s += x.data[base + iy * w + ix];
    out.data[oi] = s / ((y1 - y0) * (x1 - x0));
  });
  return out;
}

/** Gradient of adaptiveAvgPool2d: each dOut spreads evenly over its (possibly overlapping) bin. */
export function adaptiveAvgPool2dBackward(xShape: readonly number[], dOut: Arr): Arr {
  const [n, c, , w] = nchw(xShape, 'adaptiveAvgPool2dBackward');
  if (dOut.shape.length !== 4 || dOut.shape[0] !== n || dOut.shape[1] !== c) {
    throw new Error(`adaptiveAvgPool2dBackward: dOut [${dOut.shape.join(', ')}] does not match input [${xShape.join(', ')}]`);
  }
  const dInput = arr(xShape);
  adaptiveWindows(xShape, [dOut.shape[2], dOut.shape[3]], 'adaptiveAvgPool2dBackward', (oi, base, y0, y1, x0, x1) => {
    const share = dOut.data[oi] / ((y1 - y0) * (x1 - x0));
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) dInput.data[base + iy * w + ix] += share;
  });
  return dInput;
}
