/**
 * Batch-norm kernels over an [N, C, HW] view of the input, read `vec` floats at a time (4 when HW
 * divides by 4). Per-channel reductions run as `parts` partial results per channel, so a few
 * channels still keep every core busy, and a second, per-channel kernel merges them. Per-channel
 * results live in one `vec4` per channel so the element-wise passes do one load for them:
 *   stats = (mean, variance, scale, shift) with scale = γ/√(var+ε), shift = β − mean·scale;
 *   coef  = (a, b, d, 0) with dx = a·g + b·x + d.
 * Inputs larger than one binding run in chunks of whole images (`split`): the element-wise and
 * partial kernels then take the chunk's offset (in loads, equal for every tensor of the input's
 * shape), thread count and partial slot as uniforms (`SPLIT_U`), and the per-channel kernels merge
 * the partials of every chunk (`groups` chunks of `l.n` images each).
 */
import { buffers, f32, linearMain } from './common.js';
import { splitEntry } from './movement.js';

/** How the [N, C, HW] input is walked: `vec` floats per load, `parts` partial reductions of `chunk` loads per channel. */
export interface BnLayout {
  n: number;
  c: number;
  hw: number;
  vec: 1 | 4;
  /** Vector loads per channel: n · hw / vec. */
  mv: number;
  parts: number;
  chunk: number;
}

/** Threads the partial reductions aim for in total (enough for a CPU's workers or a GPU's cores). */
const TARGET_THREADS = 4096;
/** Fewest vector loads one partial reduction should do, so merging stays cheap. */
const MIN_CHUNK = 32;

export function bnLayout(n: number, c: number, hw: number): BnLayout {
  const vec = hw % 4 === 0 ? 4 : 1;
  const mv = (n * hw) / vec;
  const want = Math.max(1, Math.min(Math.ceil(mv / MIN_CHUNK), Math.floor(TARGET_THREADS / c)));
  const chunk = Math.ceil(mv / want);
  return { n, c, hw, vec, mv, parts: Math.ceil(mv / chunk), chunk };
}

/** Uniform words of a split kernel: load offset of the chunk, first partial slot, slots per channel, threads. */
export const splitUniforms = (off: number, slot: number, stride: number, total: number) => new Uint32Array([off, slot, stride, total]);

const entry = (split: boolean, binding: number, total: number, body: string) => splitEntry(split, binding, ['off', 'slot', 'stride'], total, body);

const prelude = (l: BnLayout) => `alias V = ${l.vec === 4 ? 'vec4<f32>' : 'f32'};
fn hsum(v: V) -> f32 { return ${l.vec === 4 ? 'dot(v, V(1.0))' : 'v'}; }`;

/**
 * Walks the vector loads [lo, hi) of part p of channel c: `off` is the load index, advanced across
 * the batch without divisions. `pre` runs once with `off` at the first load.
 */
function chunkLoop(l: BnLayout, pre: string, body: string, split: boolean): string {
  const hwv = l.hw / l.vec;
  return `let lo = p * ${l.chunk}u;
  let hi = min(lo + ${l.chunk}u, ${l.mv}u);
  var j = lo % ${hwv}u;
  var off = (lo / ${hwv}u * ${l.c}u + c) * ${hwv}u + j${split ? ' + u.off' : ''};
  ${pre}
  for (var m = lo; m < hi; m++) {
    ${body}
    off++;
    j++;
    if (j == ${hwv}u) { j = 0u; off += ${(l.c - 1) * hwv}u; }
  }`;
}

/** Number of floats partial p of a channel covers (partials repeat per chunk of images). */
const partCount = (l: BnLayout, groups: number) => {
  const q = groups > 1 ? `(p % ${l.parts}u)` : 'p';
  return `f32(min(${l.chunk}u, ${l.mv}u - ${q} * ${l.chunk}u) * ${l.vec}u)`;
};

/**
 * (mean, M2) of one partial. Each lane sums deviations from its own first value (shifted sums do
 * not cancel catastrophically when |mean| ≫ std), and the lanes are merged with Chan's formula.
 */
function partialStatsFn(l: BnLayout, split = false): string {
  return `fn partialStats(c: u32, p: u32) -> vec2<f32> {
  var s1 = V(0.0);
  var s2 = V(0.0);
  ${chunkLoop(l, 'let k = x[off];', 'let d = x[off] - k;\n    s1 += d;\n    s2 += d * d;', split)}
  let n = f32(hi - lo);
  let laneMean = k + s1 / n;
  let mean = hsum(laneMean) / ${f32(l.vec)};
  let dm = laneMean - V(mean);
  return vec2<f32>(mean, hsum(max(s2 - s1 * s1 / n, V(0.0))) + n * hsum(dm * dm));
}`;
}

/** Partial slot of thread i: (channel, part) → part[c · stride + slot + p] when split. */
const slotOf = (l: BnLayout, split: boolean) => (split ? `i / ${l.parts}u * u.stride + u.slot + i % ${l.parts}u` : 'i');

/** Partial batch statistics: (mean, M2) per (channel, part), one thread each. */
export function bnStatsPartialKernel(l: BnLayout, split = false) {
  const total = l.c * l.parts;
  const code = `${prelude(l)}
${buffers([['x', 'read', 'V'], ['part', 'read_write', 'vec2<f32>']])}
${partialStatsFn(l, split)}
${entry(split, 2, total, `  part[${slotOf(l, split)}] = partialStats(i / ${l.parts}u, i % ${l.parts}u);`)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

export interface BnFinalOptions {
  /** 'batch': merge the partials (or, with one part, reduce x directly); 'running': use the running statistics. */
  source: 'batch' | 'running';
  hasWeight: boolean;
  hasBias: boolean;
  /** Update the running statistics in place (training with running stats). */
  updateRunning: boolean;
  momentum: number;
  eps: number;
}

/**
 * Per-channel statistics and affine coefficients, one thread per channel. Bindings, in order:
 * `part` (or `x` when there is a single part) for 'batch', then `weight`, `bias`, `rm`, `rv` where
 * present, then `stats`.
 */
export function bnStatsFinalKernel(l: BnLayout, o: BnFinalOptions, groups = 1) {
  const count = l.n * l.hw * groups;
  const parts = l.parts * groups;
  const fused = o.source === 'batch' && parts === 1;
  const decls: [string, 'read' | 'read_write', string?][] = [];
  if (o.source === 'batch') decls.push(fused ? ['x', 'read', 'V'] : ['part', 'read', 'vec2<f32>']);
  if (o.hasWeight) decls.push(['weight', 'read']);
  if (o.hasBias) decls.push(['bias', 'read']);
  const useRunning = o.source === 'running' || o.updateRunning;
  if (useRunning) decls.push(['rm', o.updateRunning ? 'read_write' : 'read'], ['rv', o.updateRunning ? 'read_write' : 'read']);
  decls.push(['stats', 'read_write', 'vec4<f32>']);
  const merge = `var cnt = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var p = 0u; p < ${parts}u; p++) {
    let q = ${fused ? 'partialStats(c, p)' : `part[c * ${parts}u + p]`};
    let cb = ${partCount(l, groups)};
    let tot = cnt + cb;
    let d = q.x - mean;
    mean += d * cb / tot;
    m2 += q.y + d * d * cnt * cb / tot;
    cnt = tot;
  }
  let variance = m2 / ${f32(count)};`;
  const update = o.updateRunning
    ? `rm[c] = ${f32(1 - o.momentum)} * rm[c] + ${f32(o.momentum)} * mean;
  rv[c] = ${f32(1 - o.momentum)} * rv[c] + ${f32(o.momentum * (count / Math.max(count - 1, 1)))} * variance;`
    : '';
  const body = `  let c = i;
  ${o.source === 'batch' ? merge : 'let mean = rm[c];\n  let variance = rv[c];'}
  ${update}
  let scale = ${o.hasWeight ? 'weight[c]' : '1.0'} * inverseSqrt(variance + ${f32(o.eps)});
  stats[c] = vec4<f32>(mean, variance, scale, ${o.hasBias ? 'bias[c]' : '0.0'} - mean * scale);`;
  const code = `${prelude(l)}
${buffers(decls)}
${fused ? partialStatsFn(l) : ''}
${linearMain(l.c, body)}`;
  return { code, workgroups: Math.ceil(l.c / 64) };
}

/** out = x · scale[c] + shift[c]. Bindings: x, stats, out. */
export function bnAffineKernel(l: BnLayout, split = false) {
  const total = (l.n * l.c * l.hw) / l.vec;
  const at = split ? 'i + u.off' : 'i';
  const code = `${prelude(l)}
${buffers([['x', 'read', 'V'], ['stats', 'read', 'vec4<f32>'], ['out', 'read_write', 'V']])}
${entry(split, 3, total, `  let s = stats[i / ${l.hw / l.vec}u % ${l.c}u];\n  out[${at}] = x[${at}] * s.z + s.w;`)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/** (Σ g, Σ g·(x − mean)) of one partial; mean comes from the stats. */
function partialGradFn(l: BnLayout, split = false): string {
  return `fn partialGrad(c: u32, p: u32) -> vec2<f32> {
  let mean = stats[c].x;
  var sg = V(0.0);
  var sgx = V(0.0);
  ${chunkLoop(l, '', 'let gv = g[off];\n    sg += gv;\n    sgx += gv * (x[off] - mean);', split)}
  return vec2<f32>(hsum(sg), hsum(sgx));
}`;
}

/** Partial gradient sums per (channel, part). Bindings: g, x, stats, part. */
export function bnGradPartialKernel(l: BnLayout, split = false) {
  const total = l.c * l.parts;
  const code = `${prelude(l)}
${buffers([['g', 'read', 'V'], ['x', 'read', 'V'], ['stats', 'read', 'vec4<f32>'], ['part', 'read_write', 'vec2<f32>']])}
${partialGradFn(l, split)}
${entry(split, 4, total, `  part[${slotOf(l, split)}] = partialGrad(i / ${l.parts}u, i % ${l.parts}u);`)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

export interface BnGradFinalOptions {
  /** Training mode: the batch statistics depend on x, which adds the mean terms to dx. */
  training: boolean;
  hasWeight: boolean;
  /** Which outputs to write (each is a binding only when wanted). */
  wantWeight: boolean;
  wantBias: boolean;
  wantCoef: boolean;
  eps: number;
}

/**
 * Per channel: dγ = Σ g·x̂, dβ = Σ g, and in training the dx coefficients for
 * dx = γ/σ · (g − mean(g) − x̂·mean(g·x̂)). Bindings: `part` (or g, x with one part), stats, weight?,
 * then dWeight?, dBias?, coef? as wanted.
 */
export function bnGradFinalKernel(l: BnLayout, o: BnGradFinalOptions, groups = 1) {
  const count = l.n * l.hw * groups;
  const parts = l.parts * groups;
  const fused = parts === 1;
  const decls: [string, 'read' | 'read_write', string?][] = fused
    ? [['g', 'read', 'V'], ['x', 'read', 'V']]
    : [['part', 'read', 'vec2<f32>']];
  decls.push(['stats', 'read', 'vec4<f32>']);
  if (o.hasWeight && o.wantCoef && o.training) decls.push(['weight', 'read']);
  if (o.wantWeight) decls.push(['dWeight', 'read_write']);
  if (o.wantBias) decls.push(['dBias', 'read_write']);
  if (o.wantCoef) decls.push(['coef', 'read_write', 'vec4<f32>']);
  const coef = o.training
    ? `let k = ${o.hasWeight ? 'weight[c]' : '1.0'} * invStd;
  let b = -k * sgxh / ${f32(count)} * invStd;
  coef[c] = vec4<f32>(k, b, -k * s.x / ${f32(count)} - b * st.x, 0.0);`
    : '';
  const body = `  let c = i;
  var s = vec2<f32>(0.0);
  for (var p = 0u; p < ${parts}u; p++) { s += ${fused ? 'partialGrad(c, p)' : `part[c * ${parts}u + p]`}; }
  let st = stats[c];
  let invStd = inverseSqrt(st.y + ${f32(o.eps)});
  let sgxh = s.y * invStd;
  ${o.wantWeight ? 'dWeight[c] = sgxh;' : ''}
  ${o.wantBias ? 'dBias[c] = s.x;' : ''}
  ${coef}`;
  const code = `${prelude(l)}
${buffers(decls)}
${fused ? partialGradFn(l) : ''}
${linearMain(l.c, body)}`;
  return { code, workgroups: Math.ceil(l.c / 64) };
}

/**
 * dx. Training: dx = a·g + b·x + d from `coef` (bindings g, x, coef, dx).
 * Eval: the statistics are constants, so dx = g·scale (bindings g, stats, dx).
 */
export function bnGradInputKernel(l: BnLayout, training: boolean, split = false) {
  const total = (l.n * l.c * l.hw) / l.vec;
  const c = `i / ${l.hw / l.vec}u % ${l.c}u`;
  const at = split ? 'i + u.off' : 'i';
  const decls: [string, 'read' | 'read_write', string?][] = training
    ? [['g', 'read', 'V'], ['x', 'read', 'V'], ['coef', 'read', 'vec4<f32>'], ['dx', 'read_write', 'V']]
    : [['g', 'read', 'V'], ['stats', 'read', 'vec4<f32>'], ['dx', 'read_write', 'V']];
  const body = training
    ? `  let q = coef[${c}];\n  dx[${at}] = q.x * g[${at}] + q.y * x[${at}] + q.z;`
    : `  dx[${at}] = g[${at}] * stats[${c}].z;`;
  const code = `${prelude(l)}
${buffers(decls)}
${entry(split, decls.length, total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}
