import type { Rng } from '../../src/data/rng.js';

/** A dense row-major float64 array: the value type of every reference op. */
export interface Arr {
  data: Float64Array;
  shape: number[];
}

/** Number of elements of a shape (1 for a scalar shape `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Row-major strides of a shape, in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

function checkShape(shape: readonly number[], what: string): void {
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`${what}: invalid shape [${shape.join(', ')}]`);
  }
}

/** Creates an array of `shape`, zero-filled or copied from `data` (whose length must match). */
export function arr(shape: readonly number[], data?: ArrayLike<number>): Arr {
  checkShape(shape, 'arr');
  const n = numel(shape);
  if (data !== undefined && data.length !== n) {
    throw new Error(`arr: data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
  }
  return { data: data === undefined ? new Float64Array(n) : Float64Array.from(data), shape: [...shape] };
}

/** An array filled with `value`. */
export function full(shape: readonly number[], value: number): Arr {
  const a = arr(shape);
  a.data.fill(value);
  return a;
}

/** An array of uniform samples in [lo, hi) drawn from `rng`. */
export function randArr(shape: readonly number[], rng: Rng, lo = -1, hi = 1): Arr {
  const a = arr(shape);
  for (let i = 0; i < a.data.length; i++) a.data[i] = rng.uniform(lo, hi);
  return a;
}

/** An array of standard-normal samples drawn from `rng`. */
export function randnArr(shape: readonly number[], rng: Rng): Arr {
  const a = arr(shape);
  for (let i = 0; i < a.data.length; i++) a.data[i] = rng.normal();
  return a;
}

/** Canonical non-negative form of a possibly negative `dim` for an `ndim`-dimensional array. */
export function normDim(dim: number, ndim: number, what = 'dim'): number {
  if (!Number.isInteger(dim) || dim < -ndim || dim >= ndim) {
    throw new Error(`${what} ${dim} is out of range for a ${ndim}-d array`);
  }
  return dim < 0 ? dim + ndim : dim;
}

/** Flat offset of a full multi-index; throws on a wrong rank or an out-of-range index. */
export function offsetOf(shape: readonly number[], idx: readonly number[]): number {
  if (idx.length !== shape.length) {
    throw new Error(`index [${idx.join(', ')}] has ${idx.length} entries for shape [${shape.join(', ')}]`);
  }
  let off = 0;
  for (let d = 0; d < shape.length; d++) {
    const i = idx[d];
    if (!Number.isInteger(i) || i < 0 || i >= shape[d]) {
      throw new Error(`index [${idx.join(', ')}] is out of bounds for shape [${shape.join(', ')}]`);
    }
    off = off * shape[d] + i;
  }
  return off;
}

/** Multi-index of the flat row-major offset `flat` in `shape`. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

/** The element of `a` at a full multi-index. */
export function at(a: Arr, ...idx: number[]): number {
  return a.data[offsetOf(a.shape, idx)];
}

/** Largest |a - b| over two arrays of the same shape. */
export function maxAbsDiff(a: Arr, b: Arr): number {
  if (!sameShape(a.shape, b.shape)) {
    throw new Error(`maxAbsDiff: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

/**
 * NumPy-style `allclose`: same shape and |a - b| <= atol + rtol * |b| everywhere
 * (NaNs never compare close).
 */
export function allClose(a: Arr, b: Arr, rtol = 1e-5, atol = 1e-8): boolean {
  if (!sameShape(a.shape, b.shape)) return false;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i];
    const y = b.data[i];
    if (x === y) continue; // covers equal infinities
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return false;
  }
  return true;
}

/** Whether two shapes are identical. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}
