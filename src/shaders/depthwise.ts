/**
 * Depthwise convolution (groups = input channels, out = in · multiplier), NCHW, float32.
 *
 * Each output channel reads one input channel, so there is no channel reduction to tile; instead a
 * thread computes a row segment of TW outputs: per kernel row it loads the input segment under them
 * once and each load feeds up to kw FMAs. Kernel rows are a runtime loop, kernel columns are
 * unrolled (a fully unrolled 2-D window multiplies the load sites, and lavapipe's compile time with
 * them). The same stencil computes the data gradient once per stride phase (see conv.ts), summing
 * over the multiplier's channels; the weight gradient reuses the segments the same way, one thread
 * per (output channel, kernel row, slice of output rows). Sizes, offsets and paddings are runtime
 * uniforms; only the segment shape (TW, column stride, kernel columns and their spacing) is compiled in.
 */
import { buffers } from './common.js';
import { MAIN, uniformBinding, uniformLayout } from './conv.js';

/** The compiled-in shape of a row segment. */
export interface SegmentParams {
  /** Outputs per thread along a row. */
  tw: number;
  /** Column stride between adjacent outputs in the input. */
  sx: number;
  /** Kernel columns taking part, and the input-column spacing between them. */
  nkx: number;
  dxs: number;
}

/** Outputs per thread along a row for a grid `gw` wide. */
export const segmentWidth = (gw: number) => (gw <= 4 ? 4 : 8);

/**
 * The segment loads of one kernel row: `v{b}` = A[rb + col], col = ix0 + offset b, for every column
 * offset that some (output j, kernel column c) pair reads, zero outside [0, width) or when !rok.
 */
function segment(p: SegmentParams, width: string) {
  const offs = [...new Set(Array.from({ length: p.nkx }, (_, c) => Array.from({ length: p.tw }, (_, j) => j * p.sx + c * p.dxs)).flat())].sort((a, b) => a - b);
  const idx = new Map(offs.map((o, b) => [o, b]));
  const setup = offs.map((o, b) => `let cq${b} = ix0 + ${o}; let ck${b} = cq${b} >= 0 && cq${b} < ${width}; let cx${b} = u32(select(0, cq${b}, ck${b}));`).join('\n  ');
  const loads = offs.map((_, b) => `let v${b} = select(0.0, A[rb + cx${b}], rok && ck${b});`).join('\n      ');
  const at = (j: number, c: number) => `v${idx.get(j * p.sx + c * p.dxs)}`;
  return { setup, loads, at };
}

/**
 * Runtime geometry of the stencil: A per image [ca, ha, wa], B per image [cb, hwb = hb·wb], grid gh×gw
 * (position (gy, gx) written at B[(oy0 + gy·osy)·wb + ox0 + gx·osx]), kernel rows i < nky at weight
 * row ky0 + i·kys and input offset dy0 + i·dys, kernel columns j at kx0 + j·kxs and offset dx0 + j·dxs.
 */
export const STENCIL_U = uniformLayout(
  ['ca', 'ha', 'wa', 'cb', 'hwb', 'wb', 'gh', 'gw', 'tilesX', 'mult', 'kk', 'kw', 'oy0', 'ox0', 'osy', 'osx', 'sy',
    'nky', 'ky0', 'kys', 'dy0', 'dys', 'kx0', 'kxs', 'dx0'],
  ['ha', 'wa', 'sy', 'dy0', 'dys', 'dx0'],
);

export interface StencilParams extends SegmentParams {
  /**
   * 'forward': B[cb] = Σ_taps A[cb / mult] · W[cb]; 'data': B[cb] = Σ_{r < mult} Σ_taps A[cb·mult + r] · W[cb·mult + r]
   * (weight rows are the convolution's output channels, each kh·kw taps).
   */
  mode: 'forward' | 'data';
  bias: boolean;
}

/** Depthwise forward / data-gradient stencil; bindings A, W, [bias], B, uniforms. */
export function stencilKernel(p: StencilParams): string {
  const seg = segment(p, 'u.wa');
  const J = Array.from({ length: p.tw }, (_, j) => j);
  const C = Array.from({ length: p.nkx }, (_, c) => c);
  const body = (chan: string, wrow: string) => `
    for (var m = 0u; m < u.nky; m++) {
      let iy = i32(gy) * u.sy + u.dy0 + i32(m) * u.dys;
      let rok = iy >= 0 && iy < u.ha;
      let rb = ${chan} + u32(select(0, iy * u.wa, rok));
      let wr = ${wrow} * u.kk + (u.ky0 + m * u.kys) * u.kw + u.kx0;
      ${seg.loads}
      ${C.map((c) => `let w${c} = W[wr + ${c}u * u.kxs];`).join(' ')}
      ${C.flatMap((c) => J.map((j) => `o${j} += ${seg.at(j, c)} * w${c};`)).join(' ')}
    }`;
  const loop = p.mode === 'forward'
    ? `{${body('aImg + (cb / u.mult) * u32(u.ha * u.wa)', 'cb')}\n  }`
    : `for (var r = 0u; r < u.mult; r++) {\n    let ca = cb * u.mult + r;${body('aImg + ca * u32(u.ha * u.wa)', 'ca')}\n  }`;
  return `${STENCIL_U.decl}
${buffers([['A', 'read'], ['W', 'read'], ...(p.bias ? [['bias', 'read'] as [string, 'read']] : []), ['B', 'read_write']])}
${uniformBinding(p.bias ? 4 : 3)}
${MAIN}
  let tx = t % u.tilesX;
  let r0 = t / u.tilesX;
  let gy = r0 % u.gh;
  let r1 = r0 / u.gh;
  let cb = r1 % u.cb;
  let live = r1 / u.cb < u.nb;
  let n = min(r1 / u.cb, u.nb - 1u);
  let ix0 = i32(tx * ${p.tw * p.sx}u) + u.dx0;
  ${seg.setup}
  let aImg = u.aOff + n * u.ca * u32(u.ha * u.wa);
  ${J.map((j) => `var o${j} = 0.0;`).join(' ')}
  ${loop}
  if (!live) { return; }
  let ob = u.bOff + (n * u.cb + cb) * u.hwb + (u.oy0 + gy * u.osy) * u.wb + u.ox0;
  let bv = ${p.bias ? 'bias[cb]' : '0.0'};
  ${J.map((j) => `if (tx * ${p.tw}u + ${j}u < u.gw) { B[ob + (tx * ${p.tw}u + ${j}u) * u.osx] = o${j} + bv; }`).join('\n  ')}
}`;
}

/**
 * Runtime geometry of the depthwise weight gradient: input [c, h, w], output gradient [o, oh, ow],
 * multiplier, kernel (kh rows, kw columns, kk taps), row stride and dilation, top/left padding, and
 * the number of partial sums.
 */
export const DW_WGRAD_U = uniformLayout(
  ['c', 'h', 'w', 'o', 'oh', 'ow', 'tilesX', 'mult', 'kh', 'kw', 'kk', 'sy', 'dh', 'top', 'left', 'parts'],
  ['h', 'w', 'sy', 'dh', 'top', 'left'],
);

/**
 * dW[o][tap] = Σ over images and output pixels of dY[o, pixel] · X[o / mult, pixel·stride + tap offset].
 * Thread (slice s, kernel row ky, channel o) writes the kernel row's entries of P[u.slot + s][o].
 * Bindings X (as A, at u.aOff), dY (at u.bOff), P, uniforms.
 */
export function dwWeightGradKernel(p: SegmentParams): string {
  const seg = segment(p, 'u.w');
  const J = Array.from({ length: p.tw }, (_, j) => j);
  const C = Array.from({ length: p.nkx }, (_, c) => c);
  return `${DW_WGRAD_U.decl}
${buffers([['A', 'read'], ['DY', 'read'], ['P', 'read_write']])}
${uniformBinding(3)}
${MAIN}
  let oc = t % u.o;
  let r0 = t / u.o;
  let ky = r0 % u.kh;
  let live = r0 / u.kh < u.parts;
  let s = min(r0 / u.kh, u.parts - 1u);
  let rows = u.nb * u.oh;
  let rBeg = s * rows / u.parts;
  let rEnd = (s + 1u) * rows / u.parts;
  ${C.map((c) => `var s${c} = 0.0;`).join(' ')}
  // Every thread runs the longest slice's trip count (uniform loop bounds; rows past its slice add zeros).
  for (var i = 0u; i < (rows + u.parts - 1u) / u.parts; i++) {
    let row = min(rBeg + i, rEnd - 1u);
    let rowLive = rBeg + i < rEnd;
    let n = row / u.oh;
    let oy = row % u.oh;
    let iy = i32(oy) * u.sy + i32(ky) * u.dh - u.top;
    let rok = iy >= 0 && iy < u.h;
    let rb = u.aOff + (n * u.c + oc / u.mult) * u32(u.h * u.w) + u32(select(0, iy * u.w, rok));
    let yb = u.bOff + (n * u.o + oc) * u.oh * u.ow + oy * u.ow;
    for (var tx = 0u; tx < u.tilesX; tx++) {
      let ix0 = i32(tx * ${p.tw * p.sx}u) - u.left;
      ${seg.setup.replace(/\n {2}/g, '\n      ')}
      ${J.map((j) => `let d${j} = select(0.0, DY[yb + min(tx * ${p.tw}u + ${j}u, u.ow - 1u)], rowLive && tx * ${p.tw}u + ${j}u < u.ow);`).join('\n      ')}
      ${seg.loads}
      ${C.flatMap((c) => J.map((j) => `s${c} += d${j} * ${seg.at(j, c)};`)).join(' ')}
    }
  }
  if (!live) { return; }
  let slot = ((u.slot + s) * u.o + oc) * u.kk + ky * u.kw;
  ${C.map((c) => `P[slot + ${c}u] = s${c};`).join(' ')}
}`;
}
