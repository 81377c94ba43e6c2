import { arr, numel, unravel, type Arr } from './array.js';
import { broadcastShape } from './elementwise.js';

/**
 * Matrix product with `torch.matmul` semantics:
 * - 1-D · 1-D: dot product, a 0-d result;
 * - a 1-D left operand is treated as a row [1, k] and a 1-D right operand as
 *   a column [k, 1], the added dim removed from the result;
 * - otherwise the last two dims multiply and all leading (batch) dims broadcast.
 */
export function matmul(a: Arr, b: Arr): Arr {
  if (a.shape.length === 0 || b.shape.length === 0) {
    throw new Error(`matmul: both operands need at least 1 dim, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  }
  const aShape = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bShape = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const m = aShape[aShape.length - 2];
  const k = aShape[aShape.length - 1];
  const kb = bShape[bShape.length - 2];
  const n = bShape[bShape.length - 1];
  if (k !== kb) {
    throw new Error(`matmul: inner sizes differ for [${a.shape.join(', ')}] @ [${b.shape.join(', ')}] (${k} vs ${kb})`);
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShape(aBatch, bBatch);
  } catch {
    throw new Error(`matmul: batch dims of [${a.shape.join(', ')}] and [${b.shape.join(', ')}] are not broadcastable`);
  }
  const out = arr([...batch, m, n]);
  for (let bi = 0; bi < numel(batch); bi++) {
    const idx = unravel(bi, batch);
    const aOff = batchOffset(idx, aBatch) * m * k;
    const bOff = batchOffset(idx, bBatch) * k * n;
    const oOff = bi * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[aOff + i * k + p] * b.data[bOff + p * n + j];
        out.data[oOff + i * n + j] = s;
      }
    }
  }
  // Drop the dims that were added for 1-D operands.
  const shape = [...batch];
  if (a.shape.length > 1) shape.push(m);
  if (b.shape.length > 1) shape.push(n);
  return arr(shape, out.data);
}

/** Flat batch index into an operand's own (possibly shorter, size-1) batch dims. */
function batchOffset(outIdx: readonly number[], own: readonly number[]): number {
  const lead = outIdx.length - own.length;
  let off = 0;
  for (let d = 0; d < own.length; d++) off = off * own[d] + (own[d] === 1 ? 0 : outIdx[lead + d]);
  return off;
}
