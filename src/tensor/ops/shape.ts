/**
 * Shape and data-movement ops. Reshapes share the buffer; permute, expand and slice are one strided
 * gather; cat and pad are strided scatters into a new buffer. Each backward is another movement op.
 */
import { dispatch } from '../device.js';
import { record } from '../autograd.js';
import { Tensor, numelOf } from '../tensor.js';
import { WG } from '../../shaders/common.js';
import { stridedCopyKernel } from '../../shaders/movement.js';
import { balancedChunk, bindRange, chunkElements, fitsBinding } from '../split.js';
import { full, zeros } from './creation.js';

/** The offset of element `i` (row-major over `shape`) in a layout with `strides` (0 where broadcast). */
export function offsetOf(i: number, shape: readonly number[], strides: readonly number[]): number {
  let off = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    off += (i % shape[d]) * strides[d];
    i = Math.floor(i / shape[d]);
  }
  return off;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Resolves a possibly negative dim against `ndim`, naming the op on error. */
export function normDim(op: string, dim: number, ndim: number): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (!Number.isInteger(d) || d < 0 || d >= ndim) throw new Error(`${op}: dim ${dim} out of range for a ${ndim}-d tensor`);
  return d;
}

/** Same values, new shape (one entry may be -1). Shares the buffer. */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const known = shape.filter((d) => d !== -1);
  if (shape.length - known.length > 1) throw new Error(`reshape: only one dimension may be -1, got [${shape}]`);
  const rest = numelOf(known);
  const out = shape.map((d) => (d === -1 ? (rest === 0 ? 0 : x.numel / rest) : d));
  if (numelOf(out) !== x.numel || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape tensor of shape [${x.shape}] (${x.numel} elements) into [${shape}]`);
  }
  return record('reshape', [x], Tensor.view(x, out), (g) => [reshape(g, x.shape)]);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim('flatten', startDim, x.ndim);
  const e = normDim('flatten', endDim, x.ndim);
  if (e < s) throw new Error(`flatten: endDim ${endDim} is before startDim ${startDim}`);
  return reshape(x, [...x.shape.slice(0, s), numelOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

/** Removes `dim` (which must have size 1), or every size-1 dim. */
export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normDim('squeeze', dim, x.ndim);
  return x.shape[d] === 1 ? reshape(x, x.shape.filter((_, i) => i !== d)) : reshape(x, x.shape);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim('unsqueeze', dim, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

/**
 * A strided copy over the coordinates of `shape` (no autograd): gather reads `strd` at
 * `base + Σ coord·strides` into `lin` in order; scatter writes `lin`'s elements there. When the
 * buffers do not fit one binding, the work runs as boxes: the dims before some level L at one
 * coordinate, a range of dim L, and all of the later dims, with L the outermost level at which both
 * the box (contiguous on the linear side) and its span on the strided side fit a binding.
 */
function stridedCopy(name: string, kind: 'gather' | 'scatter', lin: Tensor, strd: Tensor, shape: number[], strides: number[], base: number): void {
  if (lin.numel === 0) return;
  const detail = kind === 'gather' ? `[${strd.shape}] -> [${lin.shape}]` : `[${lin.shape}] -> [${strd.shape}]`;
  const sh = shape.length ? shape : [1];
  const st = strides.length ? strides : [0];
  const bufs = (l: GPUBuffer | GPUBufferBinding, s: GPUBuffer | GPUBufferBinding) => (kind === 'gather' ? [s, l] : [l, s]);
  if (fitsBinding(lin, strd)) {
    const code = stridedCopyKernel(kind, sh, st);
    dispatch({ name, detail, code, workgroups: Math.ceil(lin.numel / WG), buffers: bufs(lin.buffer, strd.buffer), uniforms: new Uint32Array([base, lin.numel, 0, 0]) });
    return;
  }
  const lim = chunkElements();
  const whole = fitsBinding(strd);
  let level = -1;
  let most = 0;
  let inner = 1;
  let rest = 0;
  for (let l = sh.length - 1; l >= 0; l--) {
    // the box at level l with one coordinate along l: `inner` elements, spanning `rest + 1` on the strided side
    const fits = inner <= lim && (whole || rest + 1 <= lim);
    if (!fits) break;
    level = l;
    most = Math.min(sh[l], Math.floor(lim / inner), whole || st[l] === 0 ? Infinity : Math.floor((lim - rest - 1) / st[l]) + 1);
    if (l > 0) {
      rest += (sh[l] - 1) * st[l];
      inner *= sh[l];
    }
  }
  if (level < 0) throw new Error(`${name}: one element does not fit the storage binding limit (${detail})`);
  inner = numelOf(sh.slice(level + 1));
  rest = sh.slice(level + 1).reduce((a, d, i) => a + (d - 1) * st[level + 1 + i], 0);
  const code = stridedCopyKernel(kind, sh.slice(level), st.slice(level));
  const step = balancedChunk(sh[level], most);
  const outerShape = sh.slice(0, level);
  const outer = numelOf(outerShape);
  for (let q = 0; q < outer; q++) {
    const at = base + offsetOf(q, outerShape, st);
    for (let j = 0; j < sh[level]; j += step) {
      const cnt = Math.min(step, sh[level] - j);
      const [lb, linOff] = bindRange(lin, (q * sh[level] + j) * inner, cnt * inner);
      const from = at + j * st[level];
      const [sb, strdOff] = whole ? [strd.buffer, from] : bindRange(strd, from, (cnt - 1) * st[level] + rest + 1);
      dispatch({ name, detail, code, workgroups: Math.ceil((cnt * inner) / WG), buffers: bufs(lb, sb), uniforms: new Uint32Array([strdOff, cnt * inner, linOff, 0]) });
    }
  }
}

/** A strided gather into a new tensor of `outShape` (no autograd). */
function gather(name: string, x: Tensor, outShape: number[], strides: number[], base: number): Tensor {
  const out = Tensor.empty(outShape, name);
  stridedCopy(name, 'gather', out, x, outShape, strides, base);
  return out;
}

/** Writes all of `src` into `out` at `base + Σ coord·strides` (no autograd). */
function scatter(name: string, src: Tensor, out: Tensor, strides: number[], base: number): void {
  stridedCopy(name, 'scatter', src, out, src.shape, strides, base);
}

export function permute(x: Tensor, dims: number[]): Tensor {
  if (dims.length !== x.ndim) throw new Error(`permute: ${dims.length} dims given for a ${x.ndim}-d tensor`);
  const ds = dims.map((d) => normDim('permute', d, x.ndim));
  if (new Set(ds).size !== ds.length) throw new Error(`permute: repeated dim in [${dims}]`);
  const st = stridesOf(x.shape);
  const out = gather('permute', x, ds.map((d) => x.shape[d]), ds.map((d) => st[d]), 0);
  const inverse = ds.map((_, i) => ds.indexOf(i));
  return record('permute', [x], out, (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const dims = x.shape.map((_, i) => i);
  const a = normDim('transpose', d0, x.ndim);
  const b = normDim('transpose', d1, x.ndim);
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permute(x, dims);
}

/** Broadcasts size-1 dims (and new leading dims) to `shape`; -1 keeps a size. Writes a new buffer. */
export function expand(x: Tensor, shape: number[]): Tensor {
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new Error(`expand: target [${shape}] has fewer dims than tensor [${x.shape}]`);
  const st = stridesOf(x.shape);
  const target = shape.map((d, i) => (d === -1 ? (i < lead ? NaN : x.shape[i - lead]) : d));
  const strides = target.map((d, i) => {
    if (i < lead) return 0;
    const src = x.shape[i - lead];
    if (src === d) return st[i - lead];
    if (src === 1) return 0;
    throw new Error(`expand: cannot expand [${x.shape}] to [${shape}] (dim ${i}: ${src} vs ${d})`);
  });
  if (target.some((d) => !Number.isInteger(d))) throw new Error(`expand: -1 is not allowed for new leading dims in [${shape}]`);
  const out = gather('expand', x, target, strides, 0);
  return record('expand', [x], out, (g) => [g]); // the engine sums g back to x's shape
}

/** Elements start, start+step, … below end along `dim` (Python-style negative and out-of-range bounds). */
export function slice(x: Tensor, dim: number, start: number, end?: number, step = 1): Tensor {
  const d = normDim('slice', dim, x.ndim);
  if (!Number.isInteger(step) || step < 1) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const size = x.shape[d];
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = clampIdx(start);
  const e = Math.max(s, clampIdx(end ?? size));
  const outShape = [...x.shape];
  outShape[d] = Math.ceil((e - s) / step);
  const st = stridesOf(x.shape);
  const strides = st.map((v, i) => (i === d ? v * step : v));
  const out = gather('slice', x, outShape, strides, s * st[d]);
  return record('slice', [x], out, (g) => {
    const gx = zeros(x.shape);
    scatter('slice_grad', g, gx, strides, s * st[d]);
    return [gx];
  });
}

/** `length` elements from `start` along `dim`; out-of-range is an error (as in PyTorch). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normDim('narrow', dim, x.ndim);
  const s = start < 0 ? start + x.shape[d] : start;
  if (s < 0 || length < 0 || s + length > x.shape[d]) {
    throw new Error(`narrow: range [${start}, ${start}+${length}) out of bounds for dim ${dim} of size ${x.shape[d]}`);
  }
  return slice(x, d, s, s + length);
}

/** Concatenates along `dim`; all other dims must match. */
export function cat(xs: Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error('cat: no tensors given');
  const ref = xs[0];
  const d = normDim('cat', dim, ref.ndim);
  for (const x of xs) {
    if (x.ndim !== ref.ndim || x.shape.some((v, i) => i !== d && v !== ref.shape[i])) {
      throw new Error(`cat: shapes ${xs.map((t) => `[${t.shape}]`).join(', ')} differ outside dim ${dim}`);
    }
  }
  const outShape = [...ref.shape];
  outShape[d] = xs.reduce((a, x) => a + x.shape[d], 0);
  const out = Tensor.empty(outShape, 'cat');
  const st = stridesOf(outShape);
  const offsets: number[] = [];
  let off = 0;
  for (const x of xs) {
    offsets.push(off);
    scatter('cat', x, out, st, off * st[d]);
    off += x.shape[d];
  }
  return record('cat', xs, out, (g) => xs.map((x, i) => (x.requiresGrad ? slice(g, d, offsets[i], offsets[i] + x.shape[d]) : null)));
}

/** Stacks equally shaped tensors along a new dim. */
export function stack(xs: Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error('stack: no tensors given');
  const d = normDim('stack', dim, xs[0].ndim + 1);
  return cat(xs.map((x) => unsqueeze(x, d)), d);
}

/**
 * Constant padding in `F.pad` order: `[left, right]` for the last dim, then `[top, bottom]` for the one
 * before, and so on. Negative pads crop. The backward is the same op with negated pads.
 */
export function pad(x: Tensor, pads: number[], value = 0): Tensor {
  if (pads.length % 2 || pads.length / 2 > x.ndim) throw new Error(`pad: ${pads.length} pad values for a ${x.ndim}-d tensor`);
  const before = new Array<number>(x.ndim).fill(0);
  const after = new Array<number>(x.ndim).fill(0);
  for (let k = 0; k < pads.length / 2; k++) {
    before[x.ndim - 1 - k] = pads[2 * k];
    after[x.ndim - 1 - k] = pads[2 * k + 1];
  }
  const outShape = x.shape.map((s, d) => s + before[d] + after[d]);
  if (outShape.some((s) => s < 0)) throw new Error(`pad: pads [${pads}] crop more than the size of [${x.shape}]`);
  // crop first (negative pads), then write the kept block into a buffer filled with `value`
  const keptShape = x.shape.map((s, d) => Math.max(0, s + Math.min(0, before[d]) + Math.min(0, after[d])));
  const inSt = stridesOf(x.shape);
  const cropped = keptShape.some((s, d) => s !== x.shape[d])
    ? gather('pad_crop', x, keptShape, inSt, before.reduce((a, b, d) => a + Math.max(0, -b) * inSt[d], 0))
    : x;
  const out = full(outShape, value);
  const outSt = stridesOf(outShape);
  scatter('pad', cropped, out, outSt, before.reduce((a, b, d) => a + Math.max(0, b) * outSt[d], 0));
  if (cropped !== x) cropped.dispose();
  return record('pad', [x], out, (g) => [pad(g, pads.map((p) => -p))]);
}
