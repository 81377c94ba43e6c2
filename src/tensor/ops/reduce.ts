/** Reductions (sum, mean, max, min, var, argmax) over any dims, softmax and logSoftmax, and the broadcast-gradient sum. */
import { dispatch } from '../device.js';
import { record } from '../autograd.js';
import { Tensor, numelOf } from '../tensor.js';
import { mergeDims, reduceKernel, type ReduceOp } from '../../shaders/reduce.js';
import { div, eq, exp, log, mul, square, sub } from './elementwise.js';
import { expand, normDim, reshape } from './shape.js';

/** Sorted, unique, non-negative dims; all dims when `dim` is undefined. */
export function normDims(op: string, dim: number | number[] | undefined, ndim: number): number[] {
  if (dim === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const ds = (Array.isArray(dim) ? dim : [dim]).map((d) => normDim(op, d, ndim));
  return [...new Set(ds)].sort((a, b) => a - b);
}

const keptShape = (shape: number[], dims: number[]) => shape.map((s, i) => (dims.includes(i) ? 1 : s));

/** Runs a reduction kernel (two passes when a few long reductions would leave cores idle). Output has the keepdim shape. */
function reduceRaw(op: ReduceOp, x: Tensor, dims: number[], scale = 1): Tensor {
  const outShape = keptShape(x.shape, dims);
  const count = numelOf(dims.map((d) => x.shape[d]));
  if (count === 0 && (op !== 'sum')) throw new Error(`${op}: cannot reduce over an empty dimension of [${x.shape}]`);
  const out = Tensor.empty(outShape, op);
  if (out.numel === 0) return out;
  const runs = mergeDims(x.shape, x.shape.map((_, i) => dims.includes(i)));
  const outer = runs.find((r) => r.reduced)?.size ?? 1;
  const m = out.numel;
  const isArg = op === 'argmax' || op === 'argmin';
  const parts = isArg || count < 4096 || m >= 4096 ? 1 : Math.min(outer, Math.ceil(count / 1024), Math.ceil(16384 / m));
  const detail = `[${x.shape}] dims [${dims}]`;
  if (parts <= 1) {
    const k = reduceKernel(runs, op, 1, scale);
    dispatch({ name: op, detail, code: k.code, workgroups: k.workgroups, buffers: [x.buffer, out.buffer] });
    return out;
  }
  const partial = Tensor.empty([m, parts], `${op} partials`);
  const k1 = reduceKernel(runs, op, parts);
  dispatch({ name: op, detail, code: k1.code, workgroups: k1.workgroups, buffers: [x.buffer, partial.buffer] });
  const k2 = reduceKernel([{ size: m, stride: parts, reduced: false }, { size: parts, stride: 1, reduced: true }], op, 1, scale);
  dispatch({ name: op, detail, code: k2.code, workgroups: k2.workgroups, buffers: [partial.buffer, out.buffer] });
  partial.dispose();
  return out;
}

function finish(out: Tensor, x: Tensor, dims: number[], keepdim: boolean): Tensor {
  return keepdim ? out : reshape(out, x.shape.filter((_, i) => !dims.includes(i)));
}

/** Sums `g` down to `shape` over broadcast dims (the one place broadcast gradients are reduced). */
export function sumToShape(g: Tensor, shape: number[]): Tensor {
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new Error(`sumToShape: gradient [${g.shape}] has fewer dims than [${shape}]`);
  const dims = g.shape.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1));
  if (!dims.length) return g.shape.join() === shape.join() ? g : reshape(g, shape);
  const s = reduceRaw('sum', g, dims);
  const out = Tensor.view(s, shape);
  s.dispose();
  return out;
}

function sumLike(name: string, x: Tensor, dim: number | number[] | undefined, keepdim: boolean, mean: boolean): Tensor {
  const dims = normDims(name, dim, x.ndim);
  const count = numelOf(dims.map((d) => x.shape[d]));
  const scale = mean ? 1 / count : 1;
  const out = finish(reduceRaw('sum', x, dims, scale), x, dims, keepdim);
  return record(name, [x], out, (g) => {
    const gk = reshape(g, keptShape(x.shape, dims));
    return [mean ? expand(mul(gk, scale), x.shape) : expand(gk, x.shape)];
  });
}

/** Sum over `dim` (all dims by default). */
export const sum = (x: Tensor, dim?: number | number[], keepdim = false) => sumLike('sum', x, dim, keepdim, false);
/** Mean over `dim` (all dims by default). */
export const mean = (x: Tensor, dim?: number | number[], keepdim = false) => sumLike('mean', x, dim, keepdim, true);

function extreme(op: 'max' | 'min', x: Tensor, dim: number | number[] | undefined, keepdim: boolean): Tensor {
  const dims = normDims(op, dim, x.ndim);
  const kept = reduceRaw(op, x, dims);
  const out = finish(kept, x, dims, keepdim);
  // The gradient is shared equally between tied extremes (like torch.amax).
  return record(op, [x], out, (g) => {
    const mask = eq(x, reshape(out, kept.shape));
    const ties = sumLike('sum', mask, dims, true, false);
    return [div(mul(mask, reshape(g, kept.shape)), ties)];
  });
}
/** Maximum over `dim` (all dims by default); values only — see `argmax` for positions. */
export const max = (x: Tensor, dim?: number | number[], keepdim = false) => extreme('max', x, dim, keepdim);
/** Minimum over `dim` (all dims by default). */
export const min = (x: Tensor, dim?: number | number[], keepdim = false) => extreme('min', x, dim, keepdim);

/** Variance over `dim`; unbiased (divides by n-1) by default, as `torch.var`. */
export function variance(x: Tensor, dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  const dims = normDims('var', dim, x.ndim);
  const n = numelOf(dims.map((d) => x.shape[d]));
  const centered = sub(x, mean(x, dims, true));
  const ss = sum(square(centered), dims, opts.keepdim ?? false);
  return mul(ss, 1 / Math.max(n - ((opts.unbiased ?? true) ? 1 : 0), 1));
}

function argExtreme(op: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (dim === undefined) {
    const flat = reshape(x, [x.numel]);
    const r = reduceRaw(op, flat, [0]);
    return reshape(r, keepdim ? x.shape.map(() => 1) : []);
  }
  const d = normDim(op, dim, x.ndim);
  return finish(reduceRaw(op, x, [d]), x, [d], keepdim);
}
/** Index of the (first) maximum along `dim`, or over the flattened tensor; as float32. */
export const argmax = (x: Tensor, dim?: number, keepdim = false) => argExtreme('argmax', x, dim, keepdim);
/** Index of the (first) minimum along `dim`, or over the flattened tensor; as float32. */
export const argmin = (x: Tensor, dim?: number, keepdim = false) => argExtreme('argmin', x, dim, keepdim);

// Softmax is shift-invariant, so subtracting the (detached) row maximum changes nothing but overflow.
function shifted(x: Tensor, dim: number): Tensor {
  const d = normDim('softmax', dim, x.ndim);
  const m = reduceRaw('max', x, [d]);
  const out = sub(x, m);
  m.dispose();
  return out;
}

/** exp(x) / Σ exp(x) along `dim`, computed stably. */
export function softmax(x: Tensor, dim: number): Tensor {
  const e = exp(shifted(x, dim));
  return div(e, sum(e, dim, true));
}

/** log(softmax(x)) along `dim`, computed stably. */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  const z = shifted(x, dim);
  return sub(z, log(sum(exp(z), dim, true)));
}
