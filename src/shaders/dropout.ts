/**
 * Dropout masks from a counter-based hash: element j of a call with seed s keeps its value when
 * hash(s, j) ≥ p, so the backward pass regenerates the forward's mask from the seed instead of
 * storing it, and the mask does not depend on how the work is split. The hash is the PCG one of
 * `randomKernel` (shaders/movement.ts).
 */
import { buffers, linearMain } from './common.js';

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
 * the backward (src = g). Uniform: (seed, p bits, scale bits, 0). Four elements per thread when they fit.
 */
export function dropoutKernel(numel: number) {
  const vec = numel % 4 === 0;
  const total = vec ? numel / 4 : numel;
  const keep = (j: string) => `select(0.0, scale, hash01(seed, ${j}) >= p)`;
  const body = `  let seed = u.x;
  let p = bitcast<f32>(u.y);
  let scale = bitcast<f32>(u.z);
  ${vec ? `let j = 4u * i;\n  out[i] = src[i] * vec4<f32>(${[0, 1, 2, 3].map((k) => keep(`j + ${k}u`)).join(', ')});` : `out[i] = src[i] * ${keep('i')};`}`;
  const T = vec ? 'vec4<f32>' : 'f32';
  const code = `${buffers([['src', 'read', T], ['out', 'read_write', T]])}
@group(0) @binding(2) var<uniform> u: vec4<u32>;
${HASH}
${linearMain(total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/**
 * Per-sample drop-connect over `samples` rows of `perSample` elements:
 * out = src · floor(keep + hash(seed, n)) · scale for row n. Uniform: (seed, keep bits, scale bits, 0).
 */
export function dropConnectKernel(samples: number, perSample: number) {
  const vec = perSample % 4 === 0;
  const total = (samples * perSample) / (vec ? 4 : 1);
  const T = vec ? 'vec4<f32>' : 'f32';
  const body = `  let n = i / ${vec ? perSample / 4 : perSample}u;
  let m = floor(bitcast<f32>(u.y) + hash01(u.x, n)) * bitcast<f32>(u.z);
  out[i] = src[i] * m;`;
  const code = `${buffers([['src', 'read', T], ['out', 'read_write', T]])}
@group(0) @binding(2) var<uniform> u: vec4<u32>;
${HASH}
${linearMain(total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}
