/**
 * Work split under the storage-binding limit. One binding may cover at most `maxBindingSize()` bytes
 * (128 MiB on lavapipe) although a buffer may be far larger, so ops over big tensors run on
 * consecutive ranges of items (images, rows) at a time through sub-range bindings.
 */
import { maxBindingSize } from './device.js';
import type { Tensor } from './tensor.js';

/** Binding offsets must be multiples of this many bytes. */
const OFFSET_ALIGN = 256;

/**
 * A binding that covers elements [start, start + count) of `t`, starting at the aligned offset at or
 * below `start`; returns the binding and the element offset of `start` inside it (pass it to the kernel).
 */
export function bindRange(t: Tensor, start: number, count: number): [GPUBufferBinding, number] {
  const aligned = Math.floor((start * 4) / OFFSET_ALIGN) * OFFSET_ALIGN;
  const delta = start - aligned / 4;
  const size = Math.min(Math.ceil(((count + delta) * 4) / 16) * 16, t.buffer.size - aligned);
  return [{ buffer: t.buffer, offset: aligned, size }, delta];
}

/**
 * How many items fit one chunk when each tensor taking part holds `perItem[i]` elements per item:
 * the most such that every tensor's range (plus alignment slack) fits one binding; at most `items`.
 * Throws, naming the op, when a single item is too large.
 */
export function itemsPerChunk(op: string, detail: string, items: number, perItem: number[]): number {
  const limit = maxBindingSize();
  const per = Math.max(...perItem) * 4;
  const nb = Math.min(items, Math.floor((limit - OFFSET_ALIGN) / per));
  if (nb < 1) throw new Error(`${op}: one item needs a ${per}-byte binding, above the ${limit}-byte storage binding limit (${detail})`);
  return nb;
}

/** Calls `fn(chunk, start, count)` over consecutive chunks of `items` from `itemsPerChunk`. */
export function forChunks(op: string, detail: string, items: number, perItem: number[], fn: (chunk: number, start: number, count: number) => void): void {
  const nb = itemsPerChunk(op, detail, items, perItem);
  for (let start = 0, k = 0; start < items; start += nb, k++) fn(k, start, Math.min(nb, items - start));
}
