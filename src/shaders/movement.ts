/** Data-movement kernels: strided gather (permute, expand, slice), strided scatter (cat, pad), fill and random numbers. */
import { buffers, linearMain, stridedOffset } from './common.js';

// The base offset is a uniform (u.x), so slices and pieces of a cat at different offsets share one pipeline.
const BASE = '@group(0) @binding(2) var<uniform> u: vec4<u32>;';

/** `out[i] = in[base + Σ coord_d(i) * strides[d]]` over the output's shape; base in the uniform. */
export function gatherKernel(outShape: number[], strides: number[]) {
  const numel = outShape.reduce((x, y) => x * y, 1);
  const code = `${buffers([['src', 'read'], ['out', 'read_write']])}
${BASE}
${linearMain(numel, `  ${stridedOffset('j', 'i', outShape, strides, 'u.x')}\n  out[i] = src[j];`)}`;
  return { code, workgroups: Math.ceil(numel / 64) };
}

/** `out[base + Σ coord_d(i) * strides[d]] = in[i]` over the input's shape (writes into an existing buffer); base in the uniform. */
export function scatterKernel(inShape: number[], strides: number[]) {
  const numel = inShape.reduce((x, y) => x * y, 1);
  const code = `${buffers([['src', 'read'], ['out', 'read_write']])}
${BASE}
${linearMain(numel, `  ${stridedOffset('j', 'i', inShape, strides, 'u.x')}\n  out[j] = src[i];`)}`;
  return { code, workgroups: Math.ceil(numel / 64) };
}

/** Fills `numel` elements with the uniform value `u.x`. */
export function fillKernel(numel: number) {
  const code = `${buffers([['out', 'read_write']])}
@group(0) @binding(1) var<uniform> u: vec4<f32>;
${linearMain(numel, '  out[i] = u.x;')}`;
  return { code, workgroups: Math.ceil(numel / 64) };
}

/**
 * Counter-based random numbers: element i of a call with seed s is a hash of (s, i), so results do
 * not depend on the dispatch layout. `normal` uses Box–Muller on two hashes.
 * Uniform: (seed bits, low, high) for uniform; (seed bits, mean, std) for normal.
 */
export function randomKernel(numel: number, normal: boolean) {
  const value = normal
    ? `let u1 = max(hash01(seed, 2u * i), 1e-7);
  let u2 = hash01(seed, 2u * i + 1u);
  out[i] = u.y + u.z * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);`
    : `out[i] = u.y + (u.z - u.y) * hash01(seed, i);`;
  const code = `${buffers([['out', 'read_write']])}
@group(0) @binding(1) var<uniform> u: vec4<f32>;
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn hash01(seed: u32, i: u32) -> f32 {
  return f32(pcg(pcg(i) ^ seed) >> 8u) * (1.0 / 16777216.0);
}
${linearMain(numel, `  let seed = bitcast<u32>(u.x);\n  ${value}`)}`;
  return { code, workgroups: Math.ceil(numel / 64) };
}
