/** Reductions (sum, mean, max, min, var, argmax) over any dims, softmax and logSoftmax, and the broadcast-gradient sum. */
import { dispatch } from '../device.js';
import { record } from '../autograd.js';
import { Tensor, numelOf } from '../tensor.js';
import { balancedChunk, bindRange, chunkElements, fitsBinding } from '../split.js';
import { WG } from '../../shaders/common.js';
import { REDUCE_CHUNK_U, mergeDims, reduceChunkKernel, reduceKernel, type ReduceOp, type Run } from '../../shaders/reduce.js';
import { div, eq, exp, log, mapInPlace, mul, square, sub } from './elementwise.js';
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
  const runs = mergeDims(x.shape, x.shape.map((_, i) => dims.includes(i)));
  if (x.numel && !fitsBinding(x)) return reduceSplit(op, x, runs, outShape, scale, `[${x.shape}] dims [${dims}]`);
  const out = Tensor.empty(outShape, op);
  if (out.numel === 0) return out;
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

/**
 * A reduction of a tensor larger than one binding, run as boxes: the runs before a level L at one
 * coordinate, a range of run L and all of the later runs, L the outermost level at which one
 * coordinate of run L fits a binding. A box that covers all the reduced coordinates of its outputs
 * writes them; otherwise boxes write partial results (in parts, for parallelism, when a box has few
 * outputs) that one more reduction combines, or, when those would not fit a binding, each box
 * combines its result with what the earlier boxes left in the output.
 */
function reduceSplit(op: ReduceOp, x: Tensor, runs: Run[], outShape: number[], scale: number, detail: string): Tensor {
  const lim = chunkElements();
  const isArg = op === 'argmax' || op === 'argmin';
  let level = runs.length - 1;
  while (level > 0 && numelOf(runs.slice(level).map((r) => r.size)) <= lim) level--;
  const inner = numelOf(runs.slice(level + 1).map((r) => r.size));
  const run = runs[level];
  const step = balancedChunk(run.size, Math.floor(lim / inner));
  const chunksL = Math.ceil(run.size / step);
  const m = numelOf(outShape);
  // Strides of the kept runs in the output.
  const outStride = runs.map((_, k) => numelOf(runs.slice(k + 1).filter((r) => !r.reduced).map((r) => r.size)));
  const keptInner = numelOf(runs.slice(level + 1).filter((r) => !r.reduced).map((r) => r.size));
  const redInner = numelOf(runs.slice(level + 1).filter((r) => r.reduced).map((r) => r.size));
  const prefix = runs.slice(0, level);
  const numRed = numelOf(prefix.filter((r) => r.reduced).map((r) => r.size)) * (run.reduced ? chunksL : 1);
  const boxOut = (run.reduced ? 1 : step) * keptInner;
  let parts = boxOut < 64 ? Math.max(1, Math.min(Math.ceil(4096 / boxOut), Math.ceil(((run.reduced ? step : 1) * redInner) / 1024))) : 1;
  while (parts > 1 && m * numRed * parts > lim) parts = Math.ceil(parts / 2);
  const mode = numRed === 1 ? 'write' : !isArg && m * numRed * parts <= lim ? 'partial' : 'accumulate';
  if (mode !== 'partial') parts = 1;
  const out = Tensor.empty(mode === 'partial' ? [numRed * parts, m] : outShape, op);
  const best = isArg ? Tensor.empty([m], `${op} running best`) : null;
  const code = reduceChunkKernel(runs.slice(level), op, mode === 'write' ? scale : 1);
  for (let q = 0; q < numelOf(prefix.map((r) => r.size)); q++) {
    let rem = q;
    let outAt = 0;
    let redPos = 0;
    let redMul = 1;
    let idxOff = 0;
    for (let k = level - 1; k >= 0; k--) {
      const c = rem % runs[k].size;
      rem = Math.floor(rem / runs[k].size);
      if (runs[k].reduced) {
        redPos += c * redMul;
        redMul *= runs[k].size;
        idxOff = c;
      } else outAt += c * outStride[k];
    }
    for (let j0 = 0, chunk = 0; j0 < run.size; j0 += step, chunk++) {
      const cnt = Math.min(step, run.size - j0);
      const pos = run.reduced ? redPos * chunksL + chunk : redPos;
      const start = run.reduced ? outAt : outAt + j0 * outStride[level];
      const n = (run.reduced ? 1 : cnt) * keptInner;
      const [xb, xOff] = bindRange(x, (q * run.size + j0) * inner, cnt * inner);
      const [ob, outOff] = mode === 'partial' ? [out.buffer, pos * parts * m + start] : bindRange(out, start, n);
      const u = { xOff, outOff, total: n * parts, cnt, parts, pStride: m, acc: mode === 'accumulate' && pos > 0 ? 1 : 0, idxOff: run.reduced ? j0 : idxOff };
      const bufs = [xb, ob, ...(best ? [bindRange(best, start, n)[0]] : [])];
      dispatch({ name: op, detail, code, workgroups: Math.ceil((n * parts) / WG), buffers: bufs, uniforms: Uint32Array.from(REDUCE_CHUNK_U, (k) => u[k]) });
    }
  }
  best?.dispose();
  if (mode === 'partial') {
    const r = reduceRaw(op, out, [0], scale);
    out.dispose();
    const v = Tensor.view(r, outShape);
    r.dispose();
    return v;
  }
  if (mode === 'accumulate' && scale !== 1) mapInPlace(`${op}_scale`, out, (t, s) => `${t} * ${s}`, [scale]);
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
