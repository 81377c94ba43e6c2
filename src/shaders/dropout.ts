/**
 * Dropout masks from a counter-based hash: element j of a call with seed s keeps its value when
 * hash(s, j) ≥ p, so the backward pass regenerates the forward's mask from the seed instead of
 * storing it, and the mask does not depend on how the work is split. The hash is the PCG one of
 * `randomKernel` (shaders/movement.ts). Both kernels run over a range of the elements (the whole
 * tensor, or one range of a tensor larger than one binding): `u.start` is the index of the range's
 * first element, `u.total` its thread count.
 */

const UNIFORM = `struct U { seed: u32, a: u32, b: u32, start: u32, total: u32 }
@group(0) @binding(2) var<uniform> u: U;`;
import { buffers } from './common.js';
import { chunkMain } from './movement.js';

const HASH = `fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn hash01(seed: u32, i: u32) -> f32 {
  return f32(pcg(pcg(i) ^ seed) >> 8u) * (1.0 / 16777216.0);
}`;

/**
 * out = src · mask(j) · scale with mask(j) = [hash(seed, j) ≥ p]; used for the forward (src = x) and
 * the backward (src = g). Uniform a = p bits, b = scale bits. Four elements per thread when `vec`.
 */
export function dropoutKernel(vec: boolean) {
  const keep = (j: string) => `select(0.0, scale, hash01(seed, ${j}) >= p)`;
  const body = `  let seed = u.seed;
  let p = bitcast<f32>(u.a);
  let scale = bitcast<f32>(u.b);
  ${vec ? `let j = u.start + 4u * i;\n  out[i] = src[i] * vec4<f32>(${[0, 1, 2, 3].map((k) => keep(`j + ${k}u`)).join(', ')});` : `out[i] = src[i] * ${keep('u.start + i')};`}`;
  const T = vec ? 'vec4<f32>' : 'f32';
  return `${buffers([['src', 'read', T], ['out', 'read_write', T]])}
${UNIFORM}
${HASH}
${chunkMain(body)}`;
}

/**
 * Per-sample drop-connect over `samples` rows of `perSample` elements:
 * out = src · floor(keep + hash(seed, n)) · scale for row n. Uniform a = keep bits, b = scale bits.
 * Four elements per thread when `perSample` divides by 4.
 */
export function dropConnectKernel(perSample: number) {
  const vec = perSample % 4 === 0;
  const T = vec ? 'vec4<f32>' : 'f32';
  const body = `  let n = (u.start + ${vec ? '4u * i' : 'i'}) / ${perSample}u;
  let m = floor(bitcast<f32>(u.a) + hash01(u.seed, n)) * bitcast<f32>(u.b);
  out[i] = src[i] * m;`;
  return `${buffers([['src', 'read', T], ['out', 'read_write', T]])}
${UNIFORM}
${HASH}
${chunkMain(body)}`;
}
