/**
 * Work split under the storage-binding limit. One binding may cover at most `maxBindingSize()` bytes
 * (128 MiB on lavapipe) although a buffer may be far larger, so ops over big tensors run on
 * consecutive ranges of items (images, rows) at a time through sub-range bindings. Kernels of split
 * ops take the chunk's offsets and sizes as uniforms, so every chunk shares one pipeline.
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

/** Whether each tensor's whole buffer fits one binding: then an op runs unsplit, as one dispatch. */
export const fitsBinding = (...ts: Tensor[]): boolean => ts.every((t) => t.buffer.size <= maxBindingSize());

/** The most elements one range binding may cover, leaving room for the alignment slack of `bindRange`. */
export const chunkElements = (): number => Math.floor((maxBindingSize() - OFFSET_ALIGN) / 4);

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

/** Chunks of at most `most` items made as equal as possible: the chunk size to step by. */
export const balancedChunk = (items: number, most: number): number => Math.ceil(items / Math.ceil(items / Math.max(1, most)));

/**
 * Calls `fn(start, count)` over ranges of a flat `numel`-element index space that fit one binding.
 * Starts are multiples of 64 elements, so a range binding `{ offset: start * 4 }` needs no offset in the kernel.
 */
export function forRanges(numel: number, fn: (start: number, count: number) => void): void {
  const step = Math.max(64, Math.floor(chunkElements() / 64) * 64);
  for (let start = 0; start < numel; start += step) fn(start, Math.min(step, numel - start));
}

/** A binding of elements [start, start + count) of `t` at a start from `forRanges` (a multiple of 64 elements). */
export const rangeBinding = (t: Tensor, start: number, count: number): GPUBufferBinding => ({ buffer: t.buffer, offset: start * 4, size: Math.ceil(count / 4) * 16 });
