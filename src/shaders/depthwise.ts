/**
 * Depthwise convolution (groups = input channels, out = in · multiplier), NCHW, float32.
 *
 * Each output channel reads one input channel, so there is no channel reduction to tile; instead a
 * thread computes a row segment of TW output pixels: per kernel row it loads the input segment
 * under them once and each load feeds up to kw FMAs. Kernel rows are a runtime loop and kernel
 * columns are unrolled: lavapipe turns every storage load site into a loop over lanes, and
 * compile time grows steeply with the number of such sites, so fully unrolled 2-D windows (which
 * took seconds to compile) are avoided. The same stencil computes the data gradient once per
 * stride phase (see conv.ts), summing over the multiplier's channels. The weight gradient reuses
 * the segments the same way, one thread per (output channel, kernel row, slice of output rows).
 */
import { buffers } from './common.js';
import { UNIFORM_DECL, type StencilGeometry, type Tap } from './conv.js';

const MAIN = `@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;`;

/** Taps as kernel rows × kernel columns (a stride phase of a full kernel is such a product too). */
function splitTaps(taps: Tap[], kw: number) {
  const rows = [...new Map(taps.map((t) => [Math.floor(t.w / kw), t.dy])).entries()];
  const cols = [...new Map(taps.map((t) => [t.w % kw, t.dx])).entries()];
  if (rows.length * cols.length !== taps.length) throw new Error('depthwise: taps are not a product of kernel rows and columns');
  return { rows, cols };
}

/**
 * WGSL for the segment loads of one kernel row: `v{b}` = A[rowBase + ix0 + offset b] for every
 * column offset that some (pixel j, column tap) pair needs, masked outside [0, wa).
 */
function segment(cols: [number, number][], tw: number, sx: number, wa: number) {
  const offs = [...new Set(cols.flatMap(([, dx]) => Array.from({ length: tw }, (_, j) => j * sx + dx)))].sort((a, b) => a - b);
  const idx = new Map(offs.map((o, b) => [o, b]));
  const setup = offs.map((o, b) => `let cq${b} = ix0 + ${o}; let ck${b} = cq${b} >= 0 && cq${b} < ${wa}; let cx${b} = u32(select(0, cq${b}, ck${b}));`).join('\n  ');
  const loads = offs.map((_, b) => `let v${b} = select(0.0, A[rb + cx${b}], rok && ck${b});`).join('\n      ');
  const at = (j: number, dx: number) => `v${idx.get(j * sx + dx)}`;
  return { setup, loads, at };
}

export interface StencilParams extends StencilGeometry {
  /**
   * 'forward': B[cb] = Σ_taps A[cb / mult] · W[cb]; 'data': B[cb] = Σ_{r < mult} Σ_taps A[cb·mult + r] · W[cb·mult + r]
   * (weight rows are the convolution's output channels, each kh·kw taps).
   */
  mode: 'forward' | 'data';
  mult: number;
  kh: number;
  kw: number;
  bias: boolean;
}

/** Output pixels per thread along a row. */
const tileW = (gw: number) => (gw <= 4 ? 4 : 8);

/** Depthwise forward / data-gradient stencil; bindings A, W, [bias], B, uniforms. */
export function stencilKernel(p: StencilParams) {
  const [ca, ha, wa] = p.aShape;
  const [cb, hb, wb] = p.bShape;
  const [gh, gw] = p.grid;
  const kk = p.kh * p.kw;
  const tw = tileW(gw);
  const tilesX = Math.ceil(gw / tw);
  const { rows, cols } = splitTaps(p.taps, p.kw);
  const seg = segment(cols, tw, p.inStride[1], wa);
  const J = Array.from({ length: tw }, (_, j) => j);
  const body = (chan: string, wrow: string) => `
    for (var q = 0u; q < ${kk}u; q++) { wv[q] = W[${wrow} * ${kk}u + q]; }
    for (var m = 0u; m < ${rows.length}u; m++) {
      let rt = ROWS[m];
      let iy = iy0 + rt.y;
      let rok = iy >= 0 && iy < ${ha};
      let rb = ${chan} + u32(select(0, iy * ${wa}, rok));
      let wr = u32(rt.x) * ${p.kw}u;
      ${seg.loads}
      ${cols.map(([kx], c) => `let w${c} = wv[wr + ${kx}u];`).join(' ')}
      ${cols.flatMap(([, dx], c) => J.map((j) => `o${j} += ${seg.at(j, dx)} * w${c};`)).join(' ')}
    }`;
  const loop = p.mode === 'forward'
    ? `{${body(`aImg + (cb / ${p.mult}u) * ${ha * wa}u`, 'cb')}\n  }`
    : `for (var r = 0u; r < ${p.mult}u; r++) {\n    let ca = cb * ${p.mult}u + r;${body(`aImg + ca * ${ha * wa}u`, 'ca')}\n  }`;
  const code = `${UNIFORM_DECL}
${buffers([['A', 'read'], ['W', 'read'], ...(p.bias ? [['bias', 'read'] as [string, 'read']] : []), ['B', 'read_write']])}
@group(0) @binding(${p.bias ? 4 : 3}) var<uniform> u: U;
var<private> ROWS: array<vec2<i32>, ${rows.length}> = array<vec2<i32>, ${rows.length}>(${rows.map(([ky, dy]) => `vec2<i32>(${ky}, ${dy})`).join(', ')});
${MAIN}
  let tx = t % ${tilesX}u;
  let r0 = t / ${tilesX}u;
  let gy = r0 % ${gh}u;
  let r1 = r0 / ${gh}u;
  let cb = r1 % ${cb}u;
  let n = r1 / ${cb}u;
  if (n >= u.nb) { return; }
  let iy0 = i32(gy * ${p.inStride[0]}u);
  let ix0 = i32(tx * ${tw * p.inStride[1]}u);
  ${seg.setup}
  let aImg = u.aOff + n * ${ca * ha * wa}u;
  var wv: array<f32, ${kk}>;
  ${J.map((j) => `var o${j} = 0.0;`).join(' ')}
  ${loop}
  let ob = u.bOff + n * ${cb * hb * wb}u + cb * ${hb * wb}u + (${p.outStart[0]}u + gy * ${p.outStep[0]}u) * ${wb}u + ${p.outStart[1]}u;
  let bv = ${p.bias ? 'bias[cb]' : '0.0'};
  ${J.map((j) => `if (tx * ${tw}u + ${j}u < ${gw}u) { B[ob + (tx * ${tw}u + ${j}u) * ${p.outStep[1]}u] = o${j} + bv; }`).join('\n  ')}
}`;
  return { code, perImage: cb * gh * tilesX };
}

export interface DwWeightGradParams {
  /** Input [C, H, W] and output gradient [O, OH, OW] per image; O = C · mult. */
  xShape: [number, number, number];
  yShape: [number, number, number];
  mult: number;
  kh: number;
  kw: number;
  inStride: [number, number];
  /** The forward taps (w = ky·kw + kx, offsets ky·dilation − top, kx·dilation − left). */
  taps: Tap[];
  /** The reduction over output rows is split into this many partial sums. */
  parts: number;
}

/**
 * dW[o][tap] = Σ over images and output pixels of dY[o, pixel] · X[o / mult, pixel·stride + tap offset].
 * Thread (slice s, channel o, kernel row ky) writes the kw entries of P[u.slot + s][o][ky].
 * Bindings X (as A), dY, P, uniforms.
 */
export function dwWeightGradKernel(p: DwWeightGradParams) {
  const [c, h, w] = p.xShape;
  const [o, oh, ow] = p.yShape;
  const kk = p.kh * p.kw;
  const tw = tileW(ow);
  const tilesX = Math.ceil(ow / tw);
  const { rows, cols } = splitTaps(p.taps, p.kw);
  const seg = segment(cols, tw, p.inStride[1], w);
  const J = Array.from({ length: tw }, (_, j) => j);
  const total = o * p.kh * p.parts;
  const code = `${UNIFORM_DECL}
${buffers([['A', 'read'], ['DY', 'read'], ['P', 'read_write']])}
@group(0) @binding(3) var<uniform> u: U;
var<private> ROWS: array<vec2<i32>, ${rows.length}> = array<vec2<i32>, ${rows.length}>(${rows.map(([ky, dy]) => `vec2<i32>(${ky}, ${dy})`).join(', ')});
${MAIN}
  if (t >= ${total}u) { return; }
  let oc = t % ${o}u;
  let r0 = t / ${o}u;
  let m = r0 % ${p.kh}u;
  let s = r0 / ${p.kh}u;
  let rt = ROWS[m];
  let rows = u.nb * ${oh}u;
  let rBeg = s * rows / ${p.parts}u;
  let rEnd = (s + 1u) * rows / ${p.parts}u;
  ${cols.map((_, k) => `var s${k} = 0.0;`).join(' ')}
  for (var row = rBeg; row < rEnd; row++) {
    let n = row / ${oh}u;
    let oy = row % ${oh}u;
    let iy = i32(oy * ${p.inStride[0]}u) + rt.y;
    let rok = iy >= 0 && iy < ${h};
    let rb = u.aOff + n * ${c * h * w}u + (oc / ${p.mult}u) * ${h * w}u + u32(select(0, iy * ${w}, rok));
    let yb = u.bOff + n * ${o * oh * ow}u + oc * ${oh * ow}u + oy * ${ow}u;
    for (var tx = 0u; tx < ${tilesX}u; tx++) {
      let ix0 = i32(tx * ${tw * p.inStride[1]}u);
      ${seg.setup.replace(/\n {2}/g, '\n      ')}
      ${J.map((j) => `let d${j} = select(0.0, DY[yb + min(tx * ${tw}u + ${j}u, ${ow - 1}u)], tx * ${tw}u + ${j}u < ${ow}u);`).join('\n      ')}
      ${seg.loads}
      ${cols.flatMap(([, dx], k) => J.map((j) => `s${k} += d${j} * ${seg.at(j, dx)};`)).join(' ')}
    }
  }
  let slot = (u.slot + s) * ${o * kk}u + oc * ${kk}u + u32(rt.x) * ${p.kw}u;
  ${cols.map(([kx], k) => `P[slot + ${kx}u] = s${k};`).join(' ')}
}`;
  return { code, workgroups: Math.ceil(total / 64) };
}
