/** Data-movement kernels: strided gather (permute, expand, slice), strided scatter (cat, pad), fill and random numbers. */
import { WG, buffers, linearMain, stridedOffset } from './common.js';

/**
 * The entry point of a kernel that may run over one chunk of a split op: like `linearMain`, but the
 * thread count is the uniform `u.total`, so every chunk (and the unsplit case) shares one pipeline.
 */
export function chunkMain(body: string, wg = WG): string {
  return `
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${wg}u;
  if (i >= u.total) { return; }
${body}
}`;
}

/**
 * The uniform struct `U` (u32 `fields`, then `total`) at `@binding(binding)` and the entry point of a
 * kernel that runs either whole (`linearMain` over `total` threads, no uniform) or, with `split`,
 * over one chunk at a time (`chunkMain`, offsets and thread count in `U`).
 */
export function splitEntry(split: boolean, binding: number, fields: string[], total: number, body: string): string {
  if (!split) return linearMain(total, body);
  return `struct U { ${[...fields, 'total'].map((f) => `${f}: u32`).join(', ')} }
@group(0) @binding(${binding}) var<uniform> u: U;
${chunkMain(body)}`;
}

/**
 * A strided copy over a box of coordinates: the linear side holds the box contiguously from element
 * `u.lin`, the strided side is addressed as `u.base + Σ coord_d · strides[d]`. Gather reads the
 * strided side (`src`) and writes the linear one (`out`); scatter the other way round. `shape[0]`
 * only bounds the box (through `u.total`), so boxes of any length along dim 0 share the pipeline.
 */
export function stridedCopyKernel(kind: 'gather' | 'scatter', shape: number[], strides: number[]) {
  const copy = kind === 'gather' ? 'out[u.lin + i] = src[j];' : 'out[j] = src[u.lin + i];';
  return `${buffers([['src', 'read'], ['out', 'read_write']])}
struct U { base: u32, total: u32, lin: u32, pad: u32 }
@group(0) @binding(2) var<uniform> u: U;
${chunkMain(`  ${stridedOffset('j', 'i', shape, strides, 'u.base')}\n  ${copy}`)}`;
}

/** Fills `u.total` elements with `u.value`. */
export function fillKernel() {
  return `${buffers([['out', 'read_write']])}
struct U { value: f32, total: u32 }
@group(0) @binding(1) var<uniform> u: U;
${chunkMain('  out[i] = u.value;')}`;
}

/**
 * Counter-based random numbers: element j of a call with seed s is a hash of (s, j), so results do
 * not depend on the dispatch layout or the split (`u.start` is the index of the chunk's first
 * element). `normal` uses Box–Muller on two hashes; a and b are (low, high) or (mean, std).
 */
export function randomKernel(normal: boolean) {
  const value = normal
    ? `let u1 = max(hash01(u.seed, 2u * j), 1e-7);
  let u2 = hash01(u.seed, 2u * j + 1u);
  out[i] = u.a + u.b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);`
    : `out[i] = u.a + (u.b - u.a) * hash01(u.seed, j);`;
  return `${buffers([['out', 'read_write']])}
struct U { seed: u32, a: f32, b: f32, start: u32, total: u32 }
@group(0) @binding(1) var<uniform> u: U;
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn hash01(seed: u32, i: u32) -> f32 {
  return f32(pcg(pcg(i) ^ seed) >> 8u) * (1.0 / 16777216.0);
}
${chunkMain(`  let j = u.start + i;\n  ${value}`)}`;
}
