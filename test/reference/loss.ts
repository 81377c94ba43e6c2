import { arr, numel, sameShape, type Arr } from './array.js';
import { broadcastTo, sigmoidScalar } from './elementwise.js';
import { logSoftmax, softmax } from './reduce.js';

/** How per-element losses are combined, as PyTorch's `reduction`. */
export type Reduction = 'mean' | 'sum' | 'none';

/** Options of binaryCrossEntropyWithLogits. */
export interface BceWithLogitsOptions {
  /** Per-element rescaling, broadcast to the input's shape. */
  weight?: Arr;
  /** Weight of positive examples, broadcast to the input (shape [C] applies per class on the last dim). */
  posWeight?: Arr;
  /** Default 'mean'. */
  reduction?: Reduction;
}

function checkSame(x: Arr, y: Arr, what: string): void {
  if (!sameShape(x.shape, y.shape)) {
    throw new Error(`${what}: target shape [${y.shape.join(', ')}] must equal input shape [${x.shape.join(', ')}]`);
  }
}

/** Broadcasts an optional per-element factor to `shape`, defaulting to ones. */
function factor(p: Arr | undefined, shape: readonly number[]): Float64Array {
  return p === undefined ? new Float64Array(numel(shape)).fill(1) : broadcastTo(p, shape).data;
}

function reduce(values: Float64Array, shape: readonly number[], reduction: Reduction, what: string): Arr {
  if (reduction === 'none') return arr(shape, values);
  if (reduction !== 'sum' && reduction !== 'mean') throw new Error(`${what}: unknown reduction '${String(reduction)}'`);
  let s = 0;
  for (const v of values) s += v;
  return arr([], [reduction === 'sum' ? s : s / values.length]);
}

/** Upstream gradient per element: dOut (scalar for mean/sum, default 1) times the reduction's scale. */
function upstream(dOut: Arr | undefined, shape: readonly number[], reduction: Reduction, what: string): Float64Array {
  const n = numel(shape);
  if (reduction === 'none') {
    if (dOut !== undefined && !sameShape(dOut.shape, shape)) {
      throw new Error(`${what}: dOut must be [${shape.join(', ')}] for reduction 'none', got [${dOut.shape.join(', ')}]`);
    }
    return dOut === undefined ? new Float64Array(n).fill(1) : dOut.data;
  }
  if (reduction !== 'sum' && reduction !== 'mean') throw new Error(`${what}: unknown reduction '${String(reduction)}'`);
  if (dOut !== undefined && dOut.data.length !== 1) throw new Error(`${what}: dOut must be a scalar for reduction '${reduction}'`);
  const g = dOut === undefined ? 1 : dOut.data[0];
  return new Float64Array(n).fill(reduction === 'mean' ? g / n : g);
}

/** log(1 + e^(-x)), written so that it never overflows. */
function softplusNeg(x: number): number {
  return Math.log1p(Math.exp(-Math.abs(x))) + Math.max(-x, 0);
}

/**
 * `F.binary_cross_entropy_with_logits`: per element
 *   w · [(1 - y)·x + (1 + (pw - 1)·y) · log(1 + e^-x)],
 * which equals max(x,0) - x·y + log(1 + e^-|x|) when pw = 1.
 */
export function binaryCrossEntropyWithLogits(x: Arr, y: Arr, opts: BceWithLogitsOptions = {}): Arr {
  const what = 'binaryCrossEntropyWithLogits';
  checkSame(x, y, what);
  const w = factor(opts.weight, x.shape);
  const pw = factor(opts.posWeight, x.shape);
  const loss = new Float64Array(x.data.length);
  for (let i = 0; i < loss.length; i++) {
    const xi = x.data[i];
    const yi = y.data[i];
    loss[i] = w[i] * ((1 - yi) * xi + (1 + (pw[i] - 1) * yi) * softplusNeg(xi));
  }
  return reduce(loss, x.shape, opts.reduction ?? 'mean', what);
}

/**
 * Gradient of binaryCrossEntropyWithLogits w.r.t. the logits:
 * w · [(1 - y) - (1 + (pw - 1)·y)·(1 - sigmoid(x))] times the upstream gradient
 * (which is sigmoid(x) - y when pw = 1).
 */
export function binaryCrossEntropyWithLogitsBackward(x: Arr, y: Arr, opts: BceWithLogitsOptions = {}, dOut?: Arr): Arr {
  const what = 'binaryCrossEntropyWithLogitsBackward';
  checkSame(x, y, what);
  const w = factor(opts.weight, x.shape);
  const pw = factor(opts.posWeight, x.shape);
  const up = upstream(dOut, x.shape, opts.reduction ?? 'mean', what);
  const dx = arr(x.shape);
  for (let i = 0; i < dx.data.length; i++) {
    const yi = y.data[i];
    dx.data[i] = up[i] * w[i] * (1 - yi - (1 + (pw[i] - 1) * yi) * (1 - sigmoidScalar(x.data[i])));
  }
  return dx;
}

/** Options of crossEntropy. */
export interface CrossEntropyOptions {
  /** Per-class weight [C]. */
  weight?: Arr;
  /** Default 'mean' (a weighted mean: divided by the sum of the targets' weights). */
  reduction?: Reduction;
}

function checkTargets(logits: Arr, target: ArrayLike<number>, weight: Arr | undefined, what: string): Float64Array {
  if (logits.shape.length !== 2) throw new Error(`${what}: logits must be [N, C], got [${logits.shape.join(', ')}]`);
  const [n, c] = logits.shape;
  if (target.length !== n) throw new Error(`${what}: ${target.length} targets for ${n} rows of logits`);
  for (let i = 0; i < n; i++) {
    if (!Number.isInteger(target[i]) || target[i] < 0 || target[i] >= c) {
      throw new Error(`${what}: target ${target[i]} at row ${i} is not a class index in [0, ${c})`);
    }
  }
  if (weight !== undefined && (weight.shape.length !== 1 || weight.shape[0] !== c)) {
    throw new Error(`${what}: weight must be [${c}], got [${weight.shape.join(', ')}]`);
  }
  return weight === undefined ? new Float64Array(c).fill(1) : weight.data;
}

/** `F.cross_entropy` for logits [N, C] and integer class targets (length N). */
export function crossEntropy(logits: Arr, target: ArrayLike<number>, opts: CrossEntropyOptions = {}): Arr {
  const what = 'crossEntropy';
  const w = checkTargets(logits, target, opts.weight, what);
  const [n, c] = logits.shape;
  const logp = logSoftmax(logits, 1);
  const loss = arr([n]);
  let weightSum = 0;
  for (let i = 0; i < n; i++) {
    loss.data[i] = -w[target[i]] * logp.data[i * c + target[i]];
    weightSum += w[target[i]];
  }
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean') return reduce(loss.data, [n], reduction, what);
  let s = 0;
  for (const v of loss.data) s += v;
  return arr([], [s / weightSum]);
}

/** Gradient of crossEntropy w.r.t. the logits: w[y]·(softmax - onehot(y)) times the upstream gradient. */
export function crossEntropyBackward(logits: Arr, target: ArrayLike<number>, opts: CrossEntropyOptions = {}, dOut?: Arr): Arr {
  const what = 'crossEntropyBackward';
  const w = checkTargets(logits, target, opts.weight, what);
  const [n, c] = logits.shape;
  const reduction = opts.reduction ?? 'mean';
  const up = upstream(dOut, [n], reduction === 'mean' ? 'sum' : reduction, what);
  let weightSum = 0;
  for (let i = 0; i < n; i++) weightSum += w[target[i]];
  const scale = reduction === 'mean' ? 1 / weightSum : 1;
  const p = softmax(logits, 1);
  const dx = arr(logits.shape);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      const onehot = k === target[i] ? 1 : 0;
      dx.data[i * c + k] = up[i] * scale * w[target[i]] * (p.data[i * c + k] - onehot);
    }
  }
  return dx;
}

/** `F.mse_loss`: (x - y)² per element, reduced. */
export function mseLoss(x: Arr, y: Arr, reduction: Reduction = 'mean'): Arr {
  checkSame(x, y, 'mseLoss');
  return reduce(x.data.map((v, i) => (v - y.data[i]) ** 2), x.shape, reduction, 'mseLoss');
}

/** Gradient of mseLoss w.r.t. x: 2·(x - y) times the upstream gradient. */
export function mseLossBackward(x: Arr, y: Arr, reduction: Reduction = 'mean', dOut?: Arr): Arr {
  checkSame(x, y, 'mseLossBackward');
  const up = upstream(dOut, x.shape, reduction, 'mseLossBackward');
  return arr(x.shape, x.data.map((v, i) => 2 * (v - y.data[i]) * up[i]));
}
