import { arr, numel, sameShape, stridesOf, type Arr } from './array.js';

/** An array operand, or a plain number standing for a 0-d array. */
export type Operand = Arr | number;

function asArr(x: Operand): Arr {
  return typeof x === 'number' ? arr([], [x]) : x;
}

/**
 * NumPy broadcasting of two shapes: align on the right; each pair of sizes
 * must be equal or contain a 1. Throws naming both shapes otherwise.
 */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`broadcastShape: shapes [${a.join(', ')}] and [${b.join(', ')}] are not broadcastable`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Materialises `a` broadcast to `shape` (which must contain `a.shape` under
 * broadcasting: `broadcastShape(a.shape, shape)` equals `shape`).
 */
export function broadcastTo(a: Arr, shape: readonly number[]): Arr {
  const lead = shape.length - a.shape.length;
  if (lead < 0 || a.shape.some((s, i) => s !== 1 && s !== shape[lead + i])) {
    throw new Error(`broadcastTo: cannot broadcast shape [${a.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  const out = arr(shape);
  const srcStrides = stridesOf(a.shape);
  // Source stride per output dim: 0 for new leading dims and for size-1 dims being repeated.
  const step = shape.map((_, d) => (d < lead || a.shape[d - lead] === 1 ? 0 : srcStrides[d - lead]));
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.data.length; i++) {
    let src = 0;
    for (let d = 0; d < shape.length; d++) src += idx[d] * step[d];
    out.data[i] = a.data[src];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

function expandTo(a: Arr, shape: readonly number[]): Arr {
  return sameShape(a.shape, shape) ? a : broadcastTo(a, shape);
}

/** Applies `f` to every element. */
export function map(a: Arr, f: (x: number) => number): Arr {
  const out = arr(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = f(a.data[i]);
  return out;
}

/** Applies `f` elementwise to two operands after broadcasting them together. */
export function zip(a: Operand, b: Operand, f: (x: number, y: number) => number): Arr {
  const A = asArr(a);
  const B = asArr(b);
  const shape = broadcastShape(A.shape, B.shape);
  const x = expandTo(A, shape);
  const y = expandTo(B, shape);
  const out = arr(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = f(x.data[i], y.data[i]);
  return out;
}

/** Elementwise a + b with broadcasting. */
export const add = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => x + y);
/** Elementwise a - b with broadcasting. */
export const sub = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => x - y);
/** Elementwise a * b with broadcasting. */
export const mul = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => x * y);
/** Elementwise a / b with broadcasting (IEEE: x/0 is ±inf or NaN). */
export const div = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => x / y);
/** Elementwise a ** b with broadcasting (negative base, fractional exponent gives NaN as in PyTorch). */
export const pow = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => Math.pow(x, y));
/** Elementwise maximum, propagating NaN like `torch.maximum`. */
export const maximum = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => Math.max(x, y));
/** Elementwise minimum, propagating NaN like `torch.minimum`. */
export const minimum = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => Math.min(x, y));
/** 1 where a > b else 0. */
export const gt = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => (x > y ? 1 : 0));
/** 1 where a >= b else 0. */
export const ge = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => (x >= y ? 1 : 0));
/** 1 where a < b else 0. */
export const lt = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => (x < y ? 1 : 0));
/** 1 where a <= b else 0. */
export const le = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => (x <= y ? 1 : 0));
/** 1 where a == b else 0 (NaN never equals). */
export const eq = (a: Operand, b: Operand): Arr => zip(a, b, (x, y) => (x === y ? 1 : 0));

/** Picks `a` where `cond` is non-zero, else `b`; all three broadcast together. */
export function where(cond: Operand, a: Operand, b: Operand): Arr {
  const C = asArr(cond);
  const A = asArr(a);
  const B = asArr(b);
  const shape = broadcastShape(broadcastShape(C.shape, A.shape), B.shape);
  const c = expandTo(C, shape);
  const x = expandTo(A, shape);
  const y = expandTo(B, shape);
  const out = arr(shape);
  for (let i = 0; i < numel(shape); i++) out.data[i] = c.data[i] !== 0 ? x.data[i] : y.data[i];
  return out;
}

/** e^x. */
export const exp = (a: Arr): Arr => map(a, Math.exp);
/** Natural log (NaN below 0, -inf at 0). */
export const log = (a: Arr): Arr => map(a, Math.log);
/** Square root (NaN below 0). */
export const sqrt = (a: Arr): Arr => map(a, Math.sqrt);
/** 1 / sqrt(x) (inf at 0). */
export const rsqrt = (a: Arr): Arr => map(a, (x) => 1 / Math.sqrt(x));
/** |x|. */
export const abs = (a: Arr): Arr => map(a, Math.abs);
/** -x. */
export const neg = (a: Arr): Arr => map(a, (x) => -x);
/** max(x, 0). */
export const relu = (a: Arr): Arr => map(a, (x) => (x > 0 ? x : 0));
/** tanh(x). */
export const tanh = (a: Arr): Arr => map(a, Math.tanh);

/** Logistic sigmoid of one number, in a form that never overflows exp. */
export function sigmoidScalar(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** 1 / (1 + e^-x). */
export const sigmoid = (a: Arr): Arr => map(a, sigmoidScalar);
/** x * sigmoid(x) (a.k.a. swish, used by EfficientNet). */
export const silu = (a: Arr): Arr => map(a, (x) => x * sigmoidScalar(x));

/**
 * Clamps into [min, max]; either bound may be omitted (like `torch.clamp`).
 * When min > max every element becomes max, as in PyTorch.
 */
export function clamp(a: Arr, min?: number, max?: number): Arr {
  if (min === undefined && max === undefined) throw new Error('clamp: at least one of min and max is required');
  return map(a, (x) => {
    let y = x;
    if (min !== undefined && y < min) y = min;
    if (max !== undefined && y > max) y = max;
    return y;
  });
}
