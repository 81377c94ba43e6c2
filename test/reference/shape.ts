import { arr, normDim, numel, stridesOf, unravel, type Arr } from './array.js';
import { broadcastTo } from './elementwise.js';

/** Same data viewed with a new shape; one entry may be -1 (inferred). */
export function reshape(a: Arr, shape: readonly number[]): Arr {
  const inferred = shape.filter((s) => s === -1).length;
  if (inferred > 1) throw new Error(`reshape: only one -1 allowed in [${shape.join(', ')}]`);
  const known = shape.filter((s) => s !== -1).reduce((p, s) => p * s, 1);
  if (inferred === 1 && known === 0) throw new Error(`reshape: -1 is ambiguous in [${shape.join(', ')}] (other sizes multiply to 0)`);
  const out = shape.map((s) => (s === -1 ? a.data.length / known : s));
  if (out.some((s) => !Number.isInteger(s) || s < 0) || numel(out) !== a.data.length) {
    throw new Error(`reshape: cannot view shape [${a.shape.join(', ')}] (${a.data.length} elements) as [${shape.join(', ')}]`);
  }
  return arr(out, a.data);
}

/** Reorders dims: output dim i is input dim `dims[i]` (like `torch.permute`). */
export function permute(a: Arr, dims: readonly number[]): Arr {
  const n = a.shape.length;
  const p = dims.map((d) => normDim(d, n, 'permute: dim'));
  if (p.length !== n || new Set(p).size !== n) {
    throw new Error(`permute: [${dims.join(', ')}] is not a permutation of the ${n} dims of [${a.shape.join(', ')}]`);
  }
  const outShape = p.map((d) => a.shape[d]);
  const inStrides = stridesOf(a.shape);
  const out = arr(outShape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, outShape);
    let src = 0;
    for (let k = 0; k < n; k++) src += idx[k] * inStrides[p[k]];
    out.data[i] = a.data[src];
  }
  return out;
}

/** Swaps two dims. */
export function transpose(a: Arr, dim0: number, dim1: number): Arr {
  const n = a.shape.length;
  const order = a.shape.map((_, d) => d);
  const d0 = normDim(dim0, n, 'transpose: dim0');
  const d1 = normDim(dim1, n, 'transpose: dim1');
  order[d0] = d1;
  order[d1] = d0;
  return permute(a, order);
}

/**
 * Like `Tensor.expand`: size-1 dims repeat to the requested size, new leading
 * dims may be added, and -1 keeps an existing size.
 */
export function expand(a: Arr, shape: readonly number[]): Arr {
  const lead = shape.length - a.shape.length;
  if (lead < 0) throw new Error(`expand: target [${shape.join(', ')}] has fewer dims than [${a.shape.join(', ')}]`);
  const target = shape.map((s, d) => {
    if (s !== -1) return s;
    if (d < lead) throw new Error(`expand: -1 is not allowed for the new leading dim ${d} in [${shape.join(', ')}]`);
    return a.shape[d - lead];
  });
  return broadcastTo(a, target);
}

/** Concatenates along an existing `dim`; all other sizes must match. */
export function cat(arrs: readonly Arr[], dim: number): Arr {
  if (arrs.length === 0) throw new Error('cat: needs at least one array');
  const ref = arrs[0].shape;
  const d = normDim(dim, ref.length, 'cat: dim');
  for (const a of arrs) {
    if (a.shape.length !== ref.length || a.shape.some((s, k) => k !== d && s !== ref[k])) {
      throw new Error(`cat: shape [${a.shape.join(', ')}] does not match [${ref.join(', ')}] outside dim ${d}`);
    }
  }
  const outShape = [...ref];
  outShape[d] = arrs.reduce((p, a) => p + a.shape[d], 0);
  const out = arr(outShape);
  const outer = numel(ref.slice(0, d));
  const inner = numel(ref.slice(d + 1));
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (const a of arrs) {
      // One contiguous block of a: its whole extent along d for this outer index.
      const block = a.shape[d] * inner;
      out.data.set(a.data.subarray(o * block, (o + 1) * block), pos);
      pos += block;
    }
  }
  return out;
}

/** Stacks equal-shaped arrays along a new `dim` (which may be ndim, i.e. last). */
export function stack(arrs: readonly Arr[], dim: number): Arr {
  if (arrs.length === 0) throw new Error('stack: needs at least one array');
  const ref = arrs[0].shape;
  const d = normDim(dim, ref.length + 1, 'stack: dim');
  for (const a of arrs) {
    if (a.shape.length !== ref.length || a.shape.some((s, k) => s !== ref[k])) {
      throw new Error(`stack: shape [${a.shape.join(', ')}] differs from [${ref.join(', ')}]`);
    }
  }
  const withOne = [...ref.slice(0, d), 1, ...ref.slice(d)];
  return cat(arrs.map((a) => reshape(a, withOne)), d);
}

/**
 * Elements `start, start+step, ...` below `end` along `dim`, like Python's
 * `a[..., start:end:step]`: negative start/end count from the end and both
 * are clamped into range. `step` must be positive.
 */
export function slice(a: Arr, dim: number, start = 0, end = Infinity, step = 1): Arr {
  const d = normDim(dim, a.shape.length, 'slice: dim');
  if (!Number.isInteger(step) || step <= 0) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const size = a.shape[d];
  const clampIdx = (i: number): number => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = clampIdx(start);
  const e = clampIdx(end);
  const picked: number[] = [];
  for (let i = s; i < e; i += step) picked.push(i);
  return gatherAlong(a, d, picked);
}

/** `length` elements from `start` along `dim`, like `torch.narrow` (throws when out of range). */
export function narrow(a: Arr, dim: number, start: number, length: number): Arr {
  const d = normDim(dim, a.shape.length, 'narrow: dim');
  const size = a.shape[d];
  const s = start < 0 ? start + size : start;
  if (!Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > size) {
    throw new Error(`narrow: start ${start}, length ${length} is out of range for size ${size} of dim ${d}`);
  }
  return gatherAlong(a, d, Array.from({ length }, (_, k) => s + k));
}

function gatherAlong(a: Arr, d: number, picked: readonly number[]): Arr {
  const outShape = [...a.shape];
  outShape[d] = picked.length;
  const out = arr(outShape);
  const inStrides = stridesOf(a.shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, outShape);
    idx[d] = picked[idx[d]];
    let src = 0;
    for (let k = 0; k < idx.length; k++) src += idx[k] * inStrides[k];
    out.data[i] = a.data[src];
  }
  return out;
}

/**
 * Constant padding in `F.pad` order: pads[0], pads[1] are (left, right) of
 * the last dim, pads[2], pads[3] (top, bottom) of the one before, and so on.
 * Negative pads crop.
 */
export function pad(a: Arr, pads: readonly number[], value = 0): Arr {
  const n = a.shape.length;
  if (pads.length % 2 !== 0 || pads.length / 2 > n || pads.some((p) => !Number.isInteger(p))) {
    throw new Error(`pad: pads [${pads.join(', ')}] must be integer pairs for at most ${n} dims`);
  }
  const before = new Array<number>(n).fill(0);
  const after = new Array<number>(n).fill(0);
  for (let k = 0; k < pads.length / 2; k++) {
    before[n - 1 - k] = pads[2 * k];
    after[n - 1 - k] = pads[2 * k + 1];
  }
  const outShape = a.shape.map((s, d) => s + before[d] + after[d]);
  if (outShape.some((s) => s < 0)) {
    throw new Error(`pad: pads [${pads.join(', ')}] crop shape [${a.shape.join(', ')}] below zero`);
  }
  const out = arr(outShape);
  const inStrides = stridesOf(a.shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, outShape);
    let src = 0;
    let inside = true;
    for (let d = 0; d < n; d++) {
      const j = idx[d] - before[d];
      if (j < 0 || j >= a.shape[d]) inside = false;
      src += j * inStrides[d];
    }
    out.data[i] = inside ? a.data[src] : value;
  }
  return out;
}
