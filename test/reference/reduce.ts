import { arr, normDim, unravel, type Arr } from './array.js';

/** Which dims to reduce: one dim, a list, or undefined for all dims. */
export type Dims = number | readonly number[] | undefined;

function reducedDims(shape: readonly number[], dims: Dims, what: string): boolean[] {
  const list = dims === undefined ? shape.map((_, d) => d) : typeof dims === 'number' ? [dims] : [...dims];
  if (dims !== undefined && list.length === 0) {
    throw new Error(`${what}: empty dims list is ambiguous (PyTorch reduces all dims); pass undefined for all`);
  }
  const mask = shape.map(() => false);
  for (const d of list) {
    const nd = normDim(d, shape.length, `${what}: dim`);
    if (mask[nd]) throw new Error(`${what}: dim ${d} appears twice in [${list.join(', ')}]`);
    mask[nd] = true;
  }
  return mask;
}

/**
 * Groups the elements of `a` by output position. Returns the output shape
 * (with kept size-1 dims or without them) and, per output element, the flat
 * indices of the input elements that reduce into it.
 */
function groups(a: Arr, dims: Dims, keepdim: boolean, what: string): { shape: number[]; members: number[][] } {
  const mask = reducedDims(a.shape, dims, what);
  const keptShape = a.shape.map((s, d) => (mask[d] ? 1 : s));
  const outCount = keptShape.reduce((p, s) => p * s, 1);
  const members: number[][] = Array.from({ length: outCount }, () => []);
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape);
    let o = 0;
    for (let d = 0; d < idx.length; d++) o = o * keptShape[d] + (mask[d] ? 0 : idx[d]);
    members[o].push(i);
  }
  const shape = keepdim ? keptShape : a.shape.filter((_, d) => !mask[d]);
  return { shape, members };
}

function reduceWith(a: Arr, dims: Dims, keepdim: boolean, what: string, f: (values: number[]) => number): Arr {
  const { shape, members } = groups(a, dims, keepdim, what);
  const out = arr(shape);
  members.forEach((m, o) => {
    out.data[o] = f(m.map((i) => a.data[i]));
  });
  return out;
}

function total(values: number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** Sum over `dims` (all when undefined). */
export function sum(a: Arr, dims?: Dims, keepdim = false): Arr {
  return reduceWith(a, dims, keepdim, 'sum', total);
}

/** Mean over `dims` (NaN for an empty reduction, like PyTorch). */
export function mean(a: Arr, dims?: Dims, keepdim = false): Arr {
  return reduceWith(a, dims, keepdim, 'mean', (v) => total(v) / v.length);
}

function extreme(values: number[], better: (x: number, best: number) => boolean, what: string): number {
  if (values.length === 0) throw new Error(`${what}: reduction over an empty dim has no identity`);
  let best = values[0];
  for (const v of values) {
    if (Number.isNaN(v)) return NaN; // PyTorch max/min propagate NaN
    if (better(v, best)) best = v;
  }
  return best;
}

/** Maximum over `dims`; NaN if any reduced element is NaN. */
export function max(a: Arr, dims?: Dims, keepdim = false): Arr {
  return reduceWith(a, dims, keepdim, 'max', (v) => extreme(v, (x, b) => x > b, 'max'));
}

/** Minimum over `dims`; NaN if any reduced element is NaN. */
export function min(a: Arr, dims?: Dims, keepdim = false): Arr {
  return reduceWith(a, dims, keepdim, 'min', (v) => extreme(v, (x, b) => x < b, 'min'));
}

/**
 * Variance over `dims`: sum of squared deviations from the mean divided by
 * n - 1 when `unbiased` (PyTorch's default, correction=1) or by n otherwise.
 * Computed in two passes so it does not lose precision for large means.
 */
export function variance(a: Arr, dims?: Dims, unbiased = true, keepdim = false): Arr {
  return reduceWith(a, dims, keepdim, 'variance', (v) => {
    const m = total(v) / v.length;
    let ss = 0;
    for (const x of v) ss += (x - m) * (x - m);
    return ss / (unbiased ? v.length - 1 : v.length);
  });
}

/** Index of the first maximum along `dim` (NaN counts as the maximum, as in PyTorch). */
export function argmax(a: Arr, dim: number, keepdim = false): Arr {
  return reduceWith(a, dim, keepdim, 'argmax', (v) => {
    if (v.length === 0) throw new Error('argmax: reduction over an empty dim');
    let best = 0;
    for (let i = 0; i < v.length; i++) {
      if (Number.isNaN(v[i])) return i;
      if (v[i] > v[best]) best = i;
    }
    return best;
  });
}

/**
 * Applies `f` to every 1-D fibre of `a` along `dim` (in order), writing the
 * results back in place of that fibre.
 */
function alongDim(a: Arr, dim: number, what: string, f: (fibre: number[]) => number[]): Arr {
  const d = normDim(dim, a.shape.length, `${what}: dim`);
  const { members } = groups(a, d, true, what);
  const out = arr(a.shape);
  for (const m of members) {
    const r = f(m.map((i) => a.data[i]));
    m.forEach((i, k) => {
      out.data[i] = r[k];
    });
  }
  return out;
}

/** Softmax along `dim`, with the max subtracted first so exp never overflows. */
export function softmax(a: Arr, dim: number): Arr {
  return alongDim(a, dim, 'softmax', (v) => {
    const m = Math.max(...v);
    const e = v.map((x) => Math.exp(x - m));
    const s = total(e);
    return e.map((x) => x / s);
  });
}

/** log(softmax) along `dim`, computed as x - max - log(sum(exp(x - max))). */
export function logSoftmax(a: Arr, dim: number): Arr {
  return alongDim(a, dim, 'logSoftmax', (v) => {
    const m = Math.max(...v);
    const lse = m + Math.log(total(v.map((x) => Math.exp(x - m))));
    return v.map((x) => x - lse);
  });
}
