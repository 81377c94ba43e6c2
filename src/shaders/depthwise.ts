/**
 * Depthwise convolution (groups = input channels, out = in · multiplier), NCHW, float32.
 *
 * Lavapipe turns every storage load and store into a per-lane scalar loop (about a dozen
 * instructions per value) while arithmetic runs 8 lanes wide, so what counts is memory accesses per
 * FMA. Each output channel reads one input channel, so there is no channel reduction to tile; the
 * kernels instead sweep a strip of rows: a thread owns TW adjacent columns and walks down the rows,
 * loading each input row segment once and applying it to every output row it feeds, whose partial
 * sums stay in registers (a ring of S row accumulators shifted once per step). The kernel's taps
 * are loaded once per thread. So an input value is loaded about once per TW / (TW + kw - 1) and
 * feeds every tap, instead of once per kernel row.
 *
 * Row bookkeeping: output row t and kernel row i read input row t·sy + i·dd (+ offset), dd ≥ 0.
 * Step k loads the input rows k·sy + j (j < sy) and kernel row i pairs row j_i = (i·dd) mod sy with
 * output row k - s_i, s_i = floor(i·dd / sy): both are compile-time, so the loop body is straight
 * code. The weight gradient uses the same schedule with the roles swapped: a ring of S output-
 * gradient rows and per-tap sums in registers.
 *
 * The same stencil computes the data gradient once per stride phase (see conv-geometry.ts). Sizes,
 * offsets and paddings are runtime uniforms; the tap pattern (counts, spacings, strides) and TW are
 * compiled in.
 */
import { buffers } from './common.js';
import { MAIN, uniformBinding, uniformLayout } from './conv.js';

/** The compiled-in tap pattern of a sweep. */
export interface SweepParams {
  /** Outputs per thread along a row. */
  tw: number;
  /** Input strides between adjacent outputs (rows, columns). */
  sy: number;
  sx: number;
  /** Kernel rows / columns taking part and their input spacing (≥ 0). */
  nky: number;
  dys: number;
  nkx: number;
  dxs: number;
}

/** Outputs per thread along a row for a grid `gw` wide. */
export const segmentWidth = (gw: number) => (gw <= 4 ? 4 : 8);

/** Ring slots (rows in flight) of a sweep. */
export const ringSlots = (p: SweepParams) => Math.floor(((p.nky - 1) * p.dys) / p.sy) + 1;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The loads of one step: input rows `k·sy + j` for the row phases j that some kernel row uses, each
 * as the segment `v{j}_{b}` = A[row + ix0 + offset b] for every column offset some (output x,
 * kernel column c) pair reads, zero outside the image. `at(i, x, c)` names the value output x
 * takes through tap (i, c) and `slot(i)` the ring slot kernel row i pairs with.
 */
function sweep(p: SweepParams, rows: { h: string; w: string; base: string; y0: string; k: string }) {
  const offs = [...new Set(range(p.nkx).flatMap((c) => range(p.tw).map((x) => x * p.sx + c * p.dxs)))].sort((a, b) => a - b);
  const col = new Map(offs.map((o, b) => [o, b]));
  const phase = (i: number) => (i * p.dys) % p.sy;
  const js = [...new Set(range(p.nky).map(phase))];
  const colSetup = offs.map((o, b) => `let cq${b} = ix0 + ${o}; let ck${b} = cq${b} >= 0 && cq${b} < ${rows.w}; let cx${b} = u32(select(0, cq${b}, ck${b}));`).join('\n  ');
  const loads = js.map((j) => `let iy${j} = ${rows.k} * ${p.sy} + ${rows.y0} + ${j}; let rok${j} = iy${j} >= 0 && iy${j} < ${rows.h};
      let rb${j} = ${rows.base} + u32(select(0, iy${j} * ${rows.w}, rok${j}));
      ${offs.map((_, b) => `let v${j}_${b} = select(0.0, A[rb${j} + cx${b}], rok${j} && ck${b});`).join(' ')}`).join('\n      ');
  return {
    colSetup, loads,
    at: (i: number, x: number, c: number) => `v${phase(i)}_${col.get(x * p.sx + c * p.dxs)}`,
    slot: (i: number) => Math.floor((i * p.dys) / p.sy),
  };
}

/**
 * Runtime geometry of the stencil: A per image [ca, ha, wa], B per image [cb, hwb = hb·wb], grid gh×gw
 * (position (gy, gx) written at B[(oy0 + gy·osy)·wb + ox0 + gx·osx]) swept in `strips` strips of `th`
 * rows; kernel row i at weight row ky0 + i·kys and input offset dy0 + i·dys, column c at kx0 + c·kxs
 * and dx0 + c·dxs (the spacings dys, dxs compiled in).
 */
export const STENCIL_U = uniformLayout(
  ['ca', 'ha', 'wa', 'cb', 'hwb', 'wb', 'gh', 'gw', 'tilesX', 'strips', 'th', 'mult', 'kk', 'kw', 'oy0', 'ox0', 'osy', 'osx',
    'ky0', 'kys', 'dy0', 'kx0', 'kxs', 'dx0'],
  ['ha', 'wa', 'ky0', 'kys', 'dy0', 'kx0', 'kxs', 'dx0'],
);

export interface StencilParams extends SweepParams {
  /**
   * 'forward': B[cb] = Σ_taps A[cb / mult] · W[cb]; 'data': B[cb] = Σ_{r < mult} Σ_taps A[cb·mult + r] · W[cb·mult + r]
   * (weight rows are the convolution's output channels, each kh·kw taps).
   */
  mode: 'forward' | 'data';
  /** Data gradient with a multiplier above 1: each pass r adds to what earlier passes stored. */
  accumulate: boolean;
  bias: boolean;
}

/** Depthwise forward / data-gradient stencil; bindings A, W, [bias], B, uniforms. */
export function stencilKernel(p: StencilParams): string {
  const S = ringSlots(p);
  const X = range(p.tw);
  const I = range(p.nky);
  const C = range(p.nkx);
  const sw = sweep(p, { h: 'u.ha', w: 'u.wa', base: 'aChan', y0: 'u.dy0', k: 'ka' });
  const chan = p.mode === 'forward' ? { a: 'cb / u.mult', w: 'cb' } : { a: 'cb * u.mult + r', w: 'cb * u.mult + r' };
  const acc = (s: number, x: number) => `a${s}_${x}`;
  const fmas = I.flatMap((i) => C.flatMap((c) => X.map((x) => `${acc(sw.slot(i), x)} += ${sw.at(i, x, c)} * w${i}_${c};`)));
  const shift = range(S).reverse().flatMap((s) => X.map((x) => `${acc(s, x)} = ${s ? acc(s - 1, x) : '0.0'};`));
  const bias = p.bias ? 'bias[cb]' : '0.0';
  return `${STENCIL_U.decl}
${buffers([['A', 'read'], ['W', 'read'], ...(p.bias ? [['bias', 'read'] as [string, 'read']] : []), ['B', 'read_write']])}
${uniformBinding(p.bias ? 4 : 3)}
${MAIN}
  let tx = t % u.tilesX;
  let r0 = t / u.tilesX;
  let strip = r0 % u.strips;
  let r1 = r0 / u.strips;
  let cb = r1 % u.cb;
  let live = r1 / u.cb < u.nb;
  let n = min(r1 / u.cb, u.nb - 1u);
  let t0 = strip * u.th;
  let tEnd = min(t0 + u.th, u.gh);
  let ix0 = i32(tx * ${p.tw * p.sx}u) + u.dx0;
  ${sw.colSetup}
  let ob = u.bOff + (n * u.cb + cb) * u.hwb + u.ox0;
  ${X.map((x) => `let oq${x} = tx * ${p.tw}u + ${x}u; let ok${x} = live && oq${x} < u.gw; let ox${x} = oq${x} * u.osx;`).join('\n  ')}
  ${range(S).flatMap((s) => X.map((x) => `var ${acc(s, x)} = 0.0;`)).join(' ')}
  for (var r = 0u; r < ${p.mode === 'data' ? 'u.mult' : '1u'}; r++) {
    let aChan = u.aOff + (n * u.ca + ${chan.a}) * u32(u.ha * u.wa);
    let wr = i32((${chan.w}) * u.kk);
    ${I.map((i) => C.map((c) => `let w${i}_${c} = W[u32(wr + (u.ky0 + ${i} * u.kys) * i32(u.kw) + u.kx0 + ${c} * u.kxs)];`).join(' ')).join('\n    ')}
    // Step k feeds output rows k - s; the first ${S - 1} steps only fill the ring.
    for (var k = 0u; k < u.th + ${S - 1}u; k++) {
      let ka = i32(t0 + k);
      ${sw.loads}
      ${fmas.join(' ')}
      let oy = ka - ${S - 1};
      if (oy >= i32(t0) && oy < i32(tEnd)) {
        let orow = ob + (u.oy0 + u32(oy) * u.osy) * u.wb;
        ${X.map((x) => `if (ok${x}) { B[orow + ox${x}] = ${acc(S - 1, x)} + ${p.accumulate ? `select(${bias}, B[orow + ox${x}], r > 0u)` : bias}; }`).join('\n        ')}
      }
      ${shift.join(' ')}
    }
  }
}`;
}

/**
 * Runtime geometry of the depthwise weight gradient: input [c, h, w], output gradient [o, oh, ow]
 * swept in `strips` strips of `th` rows, multiplier, kernel (kh rows, kw columns, kk taps), top/left
 * padding. Partial sums: one row of P per (image, strip, column tile); u.slot is the chunk's first image.
 */
export const DW_WGRAD_U = uniformLayout(
  ['c', 'h', 'w', 'o', 'oh', 'ow', 'tilesX', 'strips', 'th', 'mult', 'kk', 'top', 'left'],
  ['h', 'w', 'top', 'left'],
);

/**
 * dW[o][tap] = Σ over images and output pixels of dY[o, pixel] · X[o / mult, pixel·stride + tap offset].
 * A thread sweeps TW columns of one strip of one image for one channel, keeping the last S rows of
 * dY in a ring and the kh·kw tap sums in registers. Bindings X (as A, at u.aOff), dY (at u.bOff), P, uniforms.
 */
export function dwWeightGradKernel(p: SweepParams): string {
  const S = ringSlots(p);
  const X = range(p.tw);
  const I = range(p.nky);
  const C = range(p.nkx);
  const sw = sweep(p, { h: 'u.h', w: 'u.w', base: 'aChan', y0: '-u.top', k: 'ka' });
  const dy = (s: number, x: number) => `d${s}_${x}`;
  const fmas = I.flatMap((i) => C.map((c) => `s${i}_${c} += ${X.map((x) => `${dy(sw.slot(i), x)} * ${sw.at(i, x, c)}`).join(' + ')};`));
  const shift = range(S).reverse().slice(0, -1).flatMap((s) => X.map((x) => `${dy(s, x)} = ${dy(s - 1, x)};`));
  return `${DW_WGRAD_U.decl}
${buffers([['A', 'read'], ['DY', 'read'], ['P', 'read_write']])}
${uniformBinding(3)}
${MAIN}
  let tx = t % u.tilesX;
  let r0 = t / u.tilesX;
  let strip = r0 % u.strips;
  let r1 = r0 / u.strips;
  let oc = r1 % u.o;
  let live = r1 / u.o < u.nb;
  let n = min(r1 / u.o, u.nb - 1u);
  let t0 = strip * u.th;
  let tEnd = min(t0 + u.th, u.oh);
  let ix0 = i32(tx * ${p.tw * p.sx}u) - u.left;
  ${sw.colSetup}
  let aChan = u.aOff + (n * u.c + oc / u.mult) * u32(u.h * u.w);
  let yb = u.bOff + (n * u.o + oc) * u.oh * u.ow;
  ${X.map((x) => `let yq${x} = tx * ${p.tw}u + ${x}u; let yk${x} = yq${x} < u.ow; let yx${x} = min(yq${x}, u.ow - 1u);`).join('\n  ')}
  ${range(S).flatMap((s) => X.map((x) => `var ${dy(s, x)} = 0.0;`)).join(' ')}
  ${I.flatMap((i) => C.map((c) => `var s${i}_${c} = 0.0;`)).join(' ')}
  // Step k pairs dY row k - s with the input rows it meets through kernel rows at ring slot s.
  for (var k = 0u; k < u.th + ${S - 1}u; k++) {
    let ka = i32(t0 + k);
    ${shift.join(' ')}
    let yok = t0 + k < tEnd;
    let yrow = yb + min(t0 + k, u.oh - 1u) * u.ow;
    ${X.map((x) => `${dy(0, x)} = select(0.0, DY[yrow + yx${x}], yok && yk${x});`).join(' ')}
    ${sw.loads.replace(/\n {6}/g, '\n    ')}
    ${fmas.join('\n    ')}
  }
  if (!live) { return; }
  let slot = ((((u.slot + n) * u.strips + strip) * u.tilesX + tx) * u.o + oc) * u.kk;
  ${I.flatMap((i) => C.map((c) => `P[slot + ${i * p.nkx + c}u] = s${i}_${c};`)).join(' ')}
}`;
}
