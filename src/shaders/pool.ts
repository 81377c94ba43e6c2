/**
 * 2-D pooling kernels over `planes` = N·C planes of H×W. Forward kernels run one thread per output;
 * backward kernels run one thread per input element and gather from the outputs whose windows
 * cover it, so overlapping windows need no atomics. With `split`, a kernel runs over a chunk of
 * planes: `u.inOff` and `u.outOff` locate the chunk in the bound ranges of input-sized (x, dx) and
 * output-sized (out, idx, g) tensors, in their load units.
 */
import { buffers, f32 } from './common.js';
import { splitEntry } from './movement.js';

/** Window geometry (PyTorch's), baked into the code. */
export interface PoolGeometry {
  planes: number;
  h: number; w: number;
  oh: number; ow: number;
  kh: number; kw: number;
  sh: number; sw: number;
  ph: number; pw: number;
  dh: number; dw: number;
}

/** Adaptive pooling needs only the sizes. */
export type AdaptiveGeometry = Pick<PoolGeometry, 'planes' | 'h' | 'w' | 'oh' | 'ow'>;

const entry = (split: boolean, binding: number, total: number, body: string) => splitEntry(split, binding, ['inOff', 'outOff'], total, body);
/** Offsets of the chunk in input-sized and output-sized bindings (empty when not split). */
const offs = (split: boolean) => (split ? { inp: ' + u.inOff', out: ' + u.outOff' } : { inp: '', out: '' });

/** Decomposes the output index i into (plane, oy, ox). */
const outCoords = (g: AdaptiveGeometry) => `let ox = i32(i % ${g.ow}u);
  let oy = i32(i / ${g.ow}u % ${g.oh}u);
  let plane = i / ${g.ow * g.oh}u;`;

/** Decomposes the input index i into (plane, iy, ix). */
const inCoords = (g: AdaptiveGeometry) => `let ix = i32(i % ${g.w}u);
  let iy = i32(i / ${g.w}u % ${g.h}u);
  let plane = i / ${g.w * g.h}u;`;

/**
 * Max pooling. Writes the output and, per output, the flat position iy·W + ix within its plane of
 * the first maximum in window order (−1 if the window holds no input; its output is then −inf).
 * Bindings: x, out, idx (i32).
 */
export function maxPoolKernel(g: PoolGeometry, split = false) {
  const total = g.planes * g.oh * g.ow;
  const o = offs(split);
  const body = `  ${outCoords(g)}
  let base = plane * ${g.h * g.w}u${o.inp};
  var ninf = 0xff800000u;
  var best = bitcast<f32>(ninf);
  var at = -1;
  for (var ky = 0; ky < ${g.kh}; ky++) {
    let iy = oy * ${g.sh} - ${g.ph} + ky * ${g.dh};
    if (iy < 0 || iy >= ${g.h}) { continue; }
    for (var kx = 0; kx < ${g.kw}; kx++) {
      let ix = ox * ${g.sw} - ${g.pw} + kx * ${g.dw};
      if (ix < 0 || ix >= ${g.w}) { continue; }
      let pos = iy * ${g.w} + ix;
      let v = x[base + u32(pos)];
      if (at < 0 || v > best) { best = v; at = pos; }
    }
  }
  out[i${o.out}] = best;
  idx[i${o.out}] = at;`;
  const code = `${buffers([['x', 'read'], ['out', 'read_write'], ['idx', 'read_write', 'i32']])}
${entry(split, 3, total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/** Max-pool backward: each input sums the gradients of the outputs that chose it. Bindings: g, idx, dx. */
export function maxPoolBackwardKernel(g: PoolGeometry, split = false) {
  const total = g.planes * g.h * g.w;
  const o = offs(split);
  const body = `  ${inCoords(g)}
  let me = iy * ${g.w} + ix;
  let obase = plane * ${g.oh * g.ow}u${o.out};
  var acc = 0.0;
  for (var ky = 0; ky < ${g.kh}; ky++) {
    let ty = iy + ${g.ph} - ky * ${g.dh};
    if (ty < 0 || ty % ${g.sh} != 0 || ty / ${g.sh} >= ${g.oh}) { continue; }
    for (var kx = 0; kx < ${g.kw}; kx++) {
      let tx = ix + ${g.pw} - kx * ${g.dw};
      if (tx < 0 || tx % ${g.sw} != 0 || tx / ${g.sw} >= ${g.ow}) { continue; }
      let o = obase + u32(ty / ${g.sh} * ${g.ow} + tx / ${g.sw});
      if (idx[o] == me) { acc += g[o]; }
    }
  }
  dx[i${o.inp}] = acc;`;
  const code = `${buffers([['g', 'read'], ['idx', 'read', 'i32'], ['dx', 'read_write']])}
${entry(split, 3, total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/**
 * WGSL function `window(oy, ox) -> vec4<i32>(y0, y1, x0, x1)`, the valid input rows and columns,
 * and `divisor(oy, ox)`: the window clipped to the padded input (countIncludePad) or the valid count.
 */
function avgWindowFns(g: PoolGeometry, countIncludePad: boolean): string {
  return `fn bounds(oy: i32, ox: i32) -> vec4<i32> {
  let ys = oy * ${g.sh} - ${g.ph};
  let xs = ox * ${g.sw} - ${g.pw};
  return vec4<i32>(ys, min(ys + ${g.kh}, ${g.h + g.ph}), xs, min(xs + ${g.kw}, ${g.w + g.pw}));
}
fn window(oy: i32, ox: i32) -> vec4<i32> {
  let b = bounds(oy, ox);
  return vec4<i32>(max(b.x, 0), min(b.y, ${g.h}), max(b.z, 0), min(b.w, ${g.w}));
}
fn divisor(oy: i32, ox: i32) -> f32 {
  let b = ${countIncludePad ? 'bounds' : 'window'}(oy, ox);
  return f32((b.y - b.x) * (b.w - b.z));
}`;
}

/** Average pooling with zero padding. Bindings: x, out. */
export function avgPoolKernel(g: PoolGeometry, countIncludePad: boolean, split = false) {
  const total = g.planes * g.oh * g.ow;
  const o = offs(split);
  const body = `  ${outCoords(g)}
  let base = plane * ${g.h * g.w}u${o.inp};
  let b = window(oy, ox);
  var s = 0.0;
  for (var iy = b.x; iy < b.y; iy++) {
    for (var ix = b.z; ix < b.w; ix++) { s += x[base + u32(iy * ${g.w} + ix)]; }
  }
  out[i${o.out}] = s / divisor(oy, ox);`;
  const code = `${buffers([['x', 'read'], ['out', 'read_write']])}
${avgWindowFns(g, countIncludePad)}
${entry(split, 2, total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/**
 * Average-pool backward: input (iy, ix) lies in the windows of outputs
 * oy ∈ [ceil((iy + ph − kh + 1) / sh), floor((iy + ph) / sh)] (likewise for x). Bindings: g, dx.
 */
export function avgPoolBackwardKernel(g: PoolGeometry, countIncludePad: boolean, split = false) {
  const total = g.planes * g.h * g.w;
  const o = offs(split);
  const range = (c: string, k: number, s: number, p: number, o: number) => `let ${c}lo = max(i${c} + ${p - k + 1 + s - 1}, ${s - 1}) / ${s};
  let ${c}hi = min((i${c} + ${p}) / ${s}, ${o - 1});`;
  const body = `  ${inCoords(g)}
  let obase = plane * ${g.oh * g.ow}u${o.out};
  ${range('y', g.kh, g.sh, g.ph, g.oh)}
  ${range('x', g.kw, g.sw, g.pw, g.ow)}
  var acc = 0.0;
  for (var oy = ylo; oy <= yhi; oy++) {
    for (var ox = xlo; ox <= xhi; ox++) { acc += g[obase + u32(oy * ${g.ow} + ox)] / divisor(oy, ox); }
  }
  dx[i${o.inp}] = acc;`;
  const code = `${buffers([['g', 'read'], ['dx', 'read_write']])}
${avgWindowFns(g, countIncludePad)}
${entry(split, 2, total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/** PyTorch's adaptive bins: output o of `out` over `size` covers [floor(o·size/out), ceil((o+1)·size/out)). */
function adaptiveFns(g: AdaptiveGeometry): string {
  return `fn bin(o: i32, size: i32, n: i32) -> vec2<i32> {
  return vec2<i32>(o * size / n, ((o + 1) * size + n - 1) / n);
}
fn area(oy: i32, ox: i32) -> f32 {
  let y = bin(oy, ${g.h}, ${g.oh});
  let x = bin(ox, ${g.w}, ${g.ow});
  return f32((y.y - y.x) * (x.y - x.x));
}`;
}

/** Adaptive average pooling; the 1×1 case is a per-plane mean with vector loads. Bindings: x, out. */
export function adaptiveAvgPoolKernel(g: AdaptiveGeometry, split = false) {
  const hw = g.h * g.w;
  const o = offs(split);
  if (g.oh === 1 && g.ow === 1) {
    const vec = hw % 4 === 0;
    const code = `${buffers([['x', 'read', vec ? 'vec4<f32>' : 'f32'], ['out', 'read_write']])}
${entry(split, 2, g.planes, `  let base = i * ${vec ? hw / 4 : hw}u${o.inp};
  var s = ${vec ? 'vec4<f32>(0.0)' : '0.0'};
  for (var k = 0u; k < ${vec ? hw / 4 : hw}u; k++) { s += x[base + k]; }
  out[i${o.out}] = ${vec ? 'dot(s, vec4<f32>(1.0))' : 's'} / ${hw}.0;`)}`;
    return { code, workgroups: Math.ceil(g.planes / 64) };
  }
  const total = g.planes * g.oh * g.ow;
  const body = `  ${outCoords(g)}
  let base = plane * ${hw}u${o.inp};
  let y = bin(oy, ${g.h}, ${g.oh});
  let xb = bin(ox, ${g.w}, ${g.ow});
  var s = 0.0;
  for (var iy = y.x; iy < y.y; iy++) {
    for (var ix = xb.x; ix < xb.y; ix++) { s += x[base + u32(iy * ${g.w} + ix)]; }
  }
  out[i${o.out}] = s / area(oy, ox);`;
  const code = `${buffers([['x', 'read'], ['out', 'read_write']])}
${adaptiveFns(g)}
${entry(split, 2, total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/**
 * Adaptive average-pool backward: input iy lies in the bins oy ∈ [floor(iy·OH/H), ceil((iy+1)·OH/H) − 1]
 * (likewise for x). The 1×1 case spreads g/(H·W) over the plane, four values per thread when they fit.
 * Bindings: g, dx.
 */
export function adaptiveAvgPoolBackwardKernel(g: AdaptiveGeometry, split = false) {
  const hw = g.h * g.w;
  const o = offs(split);
  if (g.oh === 1 && g.ow === 1) {
    const vec = hw % 4 === 0;
    const total = (g.planes * hw) / (vec ? 4 : 1);
    const code = `${buffers([['g', 'read'], ['dx', 'read_write', vec ? 'vec4<f32>' : 'f32']])}
${entry(split, 2, total, `  dx[i${o.inp}] = ${vec ? 'vec4<f32>' : 'f32'}(g[i / ${vec ? hw / 4 : hw}u${o.out}] * ${f32(1 / hw)});`)}`;
    return { code, workgroups: Math.ceil(total / 64) };
  }
  const total = g.planes * hw;
  const body = `  ${inCoords(g)}
  let obase = plane * ${g.oh * g.ow}u${o.out};
  let yhi = min(((iy + 1) * ${g.oh} + ${g.h - 1}) / ${g.h}, ${g.oh});
  let xhi = min(((ix + 1) * ${g.ow} + ${g.w - 1}) / ${g.w}, ${g.ow});
  var acc = 0.0;
  for (var oy = iy * ${g.oh} / ${g.h}; oy < yhi; oy++) {
    for (var ox = ix * ${g.ow} / ${g.w}; ox < xhi; ox++) { acc += g[obase + u32(oy * ${g.ow} + ox)] / area(oy, ox); }
  }
  dx[i${o.inp}] = acc;`;
  const code = `${buffers([['g', 'read'], ['dx', 'read_write']])}
${adaptiveFns(g)}
${entry(split, 2, total, body)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}
