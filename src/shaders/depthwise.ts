/**
 * Depthwise convolution (groups = input channels, out = in · multiplier), NCHW, float32.
 *
 * Lavapipe turns every storage load and store into a per-lane scalar sequence with a bounds check
 * (about a dozen instructions per value and lane) while arithmetic runs 8 lanes wide, so what counts
 * is memory accesses per output. Each output channel reads one input channel, so there is no
 * channel reduction to tile; the kernels instead sweep a strip of rows: a thread owns TW adjacent
 * columns and walks down the rows, loading each input row segment once and applying it to every
 * output row it feeds, whose partial sums stay in registers (a ring of S row accumulators shifted
 * once per step), the kernel's taps loaded once per thread. At stride 1 that is (TW + kw - 1) / TW
 * loads and one store per output, against one load per tap before (hot loop on lavapipe: 3.4
 * instructions per FMA for 3x3, 1.6 for 5x5, from 11.2 and 9.1).
 *
 * Row bookkeeping: output row t and kernel row i read input row t·sy + i·dd (+ offset), dd ≥ 0.
 * Step k loads the input rows k·sy + j (j < sy) and kernel row i pairs row j_i = (i·dd) mod sy with
 * output row k - s_i, s_i = floor(i·dd / sy): both are compile-time, so the loop body is straight
 * code. The weight gradient uses the same schedule with the roles swapped: a ring of S output-
 * gradient rows and per-tap sums in registers.
 *
 * The same stencil computes the data gradient once per stride phase (see conv-geometry.ts). Sizes,
 * offsets and paddings are runtime uniforms; the tap pattern (counts, spacings, strides), TW and
 * the vec4 layout are compiled in. Subgroup shuffles would only save the kw - 1 halo values of a
 * segment, not worth a second code path.
 */
import { buffers, memoize } from './common.js';
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
 * as the segment of every column offset some (output x, kernel column c) pair reads, zero outside
 * the image. With `ph` set (rows a multiple of 4 wide, A bound as vec4 `A4`), the segment is read
 * as aligned vec4s, `ph` being the column phase (first column mod 4), compiled in: lavapipe still
 * checks each used component, but four values share one address computation (about 30 % fewer
 * instructions). `at(i, x, c)` names the value output x takes through tap (i, c) and `slot(i)` the
 * ring slot kernel row i pairs with.
 */
function sweep(p: SweepParams, rows: { h: string; w: string; base: string; y0: string; k: string; x0: string; ph: number | null }) {
  const offs = [...new Set(range(p.nkx).flatMap((c) => range(p.tw).map((x) => x * p.sx + c * p.dxs)))].sort((a, b) => a - b);
  const phase = (i: number) => (i * p.dys) % p.sy;
  const js = [...new Set(range(p.nky).map(phase))];
  const vec = rows.ph !== null;
  const ph = rows.ph ?? 0;
  // Scalar: load b holds offset offs[b]. Vec4: load e holds offsets 4e - ph .. 4e - ph + 3.
  const units = vec ? [...new Set(offs.map((o) => Math.floor((o + ph) / 4)))] : offs;
  const rowW = vec ? `(${rows.w} / 4)` : rows.w;
  const colSetup = [
    vec ? `let ix0 = (${rows.x0} - ${ph}) / 4;` : `let ix0 = ${rows.x0};`,
    ...units.map((o, b) => `let cq${b} = ix0 + ${o}; let ck${b} = cq${b} >= 0 && cq${b} < ${rowW}; let cx${b} = u32(select(0, cq${b}, ck${b}));`),
  ].join('\n  ');
  const zero = vec ? 'vec4<f32>(0.0)' : '0.0';
  const loads = js.map((j) => `let iy${j} = ${rows.k} * ${p.sy} + ${rows.y0} + ${j}; let rok${j} = iy${j} >= 0 && iy${j} < ${rows.h};
      let rb${j} = ${vec ? `${rows.base} / 4u` : rows.base} + u32(select(0, iy${j} * ${rowW}, rok${j}));
      ${units.map((_, b) => `let v${j}_${b} = select(${zero}, A${vec ? '4' : ''}[rb${j} + cx${b}], rok${j} && ck${b});`).join(' ')}`).join('\n      ');
  const unit = new Map(units.map((o, b) => [o, b]));
  const at = (i: number, x: number, c: number) => {
    const o = x * p.sx + c * p.dxs;
    return vec ? `v${phase(i)}_${unit.get(Math.floor((o + ph) / 4))}.${'xyzw'[(o + ph) % 4]}` : `v${phase(i)}_${unit.get(o)}`;
  };
  return { colSetup, loads, at, slot: (i: number) => Math.floor((i * p.dys) / p.sy) };
}

/**
 * Decodes thread `t` into column tile `tx`, row strip [t0, tEnd) of `rows`, channel `ch` (of
 * `channels`) and image `n` of the chunk; `live` is false for threads past the chunk, which compute on
 * clamped indices and store nothing.
 */
const stripThread = (ch: string, channels: string, rows: string) => `let tx = t % u.tilesX;
  let r0 = t / u.tilesX;
  let strip = r0 % u.strips;
  let r1 = r0 / u.strips;
  let ${ch} = r1 % ${channels};
  let live = r1 / ${channels} < u.nb;
  let n = min(r1 / ${channels}, u.nb - 1u);
  let t0 = strip * u.th;
  let tEnd = min(t0 + u.th, ${rows});`;

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
  /** Column phase of vec4 input loads (see `sweep`), or null for scalar loads. */
  inPhase: number | null;
  /** vec4 stores: contiguous output columns (osx = 1), rows, ox0, gw and bOff multiples of 4. */
  vecOut: boolean;
}

/** A vec4 of four named scalars. */
const vec4 = (xs: string[]) => `vec4<f32>(${xs.join(', ')})`;

/** Depthwise forward / data-gradient stencil; bindings A (or A4), W, [bias], B (or B4), uniforms. */
export const stencilKernel = memoize((p: StencilParams): string => {
  const S = ringSlots(p);
  const X = range(p.tw);
  const I = range(p.nky);
  const C = range(p.nkx);
  const sw = sweep(p, { h: 'u.ha', w: 'u.wa', base: 'aChan', y0: 'u.dy0', k: 'ka', x0: `i32(tx * ${p.tw * p.sx}u) + u.dx0`, ph: p.inPhase });
  const chan = p.mode === 'forward' ? { a: 'cb / u.mult', w: 'cb' } : { a: 'cb * u.mult + r', w: 'cb * u.mult + r' };
  const acc = (s: number, x: number) => `a${s}_${x}`;
  const fmas = I.flatMap((i) => C.flatMap((c) => X.map((x) => `${acc(sw.slot(i), x)} += ${sw.at(i, x, c)} * w${i}_${c};`)));
  const shift = range(S).reverse().flatMap((s) => X.map((x) => `${acc(s, x)} = ${s ? acc(s - 1, x) : '0.0'};`));
  const bias = p.bias ? 'bias[cb]' : '0.0';
  const add = (out: string, zero: string) => (p.accumulate ? `select(${zero}, ${out}, r > 0u)` : bias);
  const E = range(p.tw / 4);
  const stores = p.vecOut
    ? E.map((e) => `if (ok${4 * e}) { let o = (orow + tx * ${p.tw}u) / 4u + ${e}u; B4[o] = ${vec4(range(4).map((k) => acc(S - 1, 4 * e + k)))} + ${add('B4[o]', `vec4<f32>(${bias})`)}; }`)
    : X.map((x) => `if (ok${x}) { B[orow + ox${x}] = ${acc(S - 1, x)} + ${add(`B[orow + ox${x}]`, bias)}; }`);
  return `${STENCIL_U.decl}
${buffers([
    p.inPhase === null ? ['A', 'read'] : ['A4', 'read', 'vec4<f32>'], ['W', 'read'], ...(p.bias ? [['bias', 'read'] as [string, 'read']] : []),
    p.vecOut ? ['B4', 'read_write', 'vec4<f32>'] : ['B', 'read_write'],
  ])}
${uniformBinding(p.bias ? 4 : 3)}
${MAIN}
  ${stripThread('cb', 'u.cb', 'u.gh')}
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
        ${stores.join('\n        ')}
      }
      ${shift.join(' ')}
    }
  }
}`;
});

/**
 * Runtime geometry of the depthwise weight gradient: input [c, h, w], output gradient [o, oh, ow]
 * swept in `strips` strips of `th` rows, multiplier, kernel (kh rows, kw columns, kk taps), top/left
 * padding. Partial sums: one row of P per (image, strip, column tile); u.slot is the chunk's first image.
 */
export const DW_WGRAD_U = uniformLayout(
  ['c', 'h', 'w', 'o', 'oh', 'ow', 'tilesX', 'strips', 'th', 'mult', 'kk', 'top', 'left'],
  ['h', 'w', 'top', 'left'],
);

export interface WeightGradParams extends SweepParams {
  /** Column phase of vec4 input loads (see `sweep`), or null for scalar loads. */
  inPhase: number | null;
  /** vec4 output-gradient loads: rows and bOff multiples of 4. */
  vecDy: boolean;
}

/**
 * dW[o][tap] = Σ over images and output pixels of dY[o, pixel] · X[o / mult, pixel·stride + tap offset].
 * A thread sweeps TW columns of one strip of one image for one channel, keeping the last S rows of
 * dY in a ring and the kh·kw tap sums in registers. Bindings X (as A or A4, at u.aOff), dY (DY or
 * DY4, at u.bOff), P, uniforms.
 */
export const dwWeightGradKernel = memoize((p: WeightGradParams): string => {
  const S = ringSlots(p);
  const X = range(p.tw);
  const I = range(p.nky);
  const C = range(p.nkx);
  const sw = sweep(p, { h: 'u.h', w: 'u.w', base: 'aChan', y0: '-u.top', k: 'ka', x0: `i32(tx * ${p.tw * p.sx}u) - u.left`, ph: p.inPhase });
  const dy = (s: number, x: number) => `d${s}_${x}`;
  const fmas = I.flatMap((i) => C.map((c) => `s${i}_${c} += ${X.map((x) => `${dy(sw.slot(i), x)} * ${sw.at(i, x, c)}`).join(' + ')};`));
  const shift = range(S).reverse().slice(0, -1).flatMap((s) => X.map((x) => `${dy(s, x)} = ${dy(s - 1, x)};`));
  const loadDy = p.vecDy
    ? range(p.tw / 4).map((e) => `let dq${e} = select(vec4<f32>(0.0), DY4[yrow / 4u + tx * ${p.tw / 4}u + ${e}u], yok && yk${4 * e});
    ${range(4).map((k) => `${dy(0, 4 * e + k)} = dq${e}.${'xyzw'[k]};`).join(' ')}`)
    : X.map((x) => `${dy(0, x)} = select(0.0, DY[yrow + yx${x}], yok && yk${x});`);
  return `${DW_WGRAD_U.decl}
${buffers([p.inPhase === null ? ['A', 'read'] : ['A4', 'read', 'vec4<f32>'], p.vecDy ? ['DY4', 'read', 'vec4<f32>'] : ['DY', 'read'], ['P', 'read_write']])}
${uniformBinding(3)}
${MAIN}
  ${stripThread('oc', 'u.o', 'u.oh')}
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
    ${loadDy.join('\n    ')}
    ${sw.loads.replace(/\n {6}/g, '\n    ')}
    ${fmas.join('\n    ')}
  }
  if (!live) { return; }
  let slot = ((((u.slot + n) * u.strips + strip) * u.tilesX + tx) * u.o + oc) * u.kk;
  ${I.flatMap((i) => C.map((c) => `P[slot + ${i * p.nkx + c}u] = s${i}_${c};`)).join(' ')}
}`;
});
