/**
 * Grouped 2-D convolution as an implicit GEMM (no im2col buffer), NCHW, float32.
 *
 * One kernel, `gconvKernel`, serves the forward pass and the data gradient: both are "for every
 * output position of a grid, sum over taps and reduction channels of A[channel, grid·stride + tap
 * offset] · W". The data gradient runs it once per stride phase (the input pixels whose
 * coordinates are equal modulo the stride), where only the taps that land on an output pixel take
 * part, so no zeros are inserted and no work is masked away. Each thread keeps a register tile of
 * `tileO` output channels × 4 grid positions; weights are re-laid out (`arrangeWeightsKernel`) so
 * the output channels of one tap and reduction channel are one vec4 load. Lavapipe makes every
 * storage load a scalar loop over lanes, so loads per FMA is what counts, and workgroup shared
 * memory would only add loads.
 *
 * Tensors larger than one binding are processed a chunk of images at a time: the runtime uniforms
 * `aOff`/`bOff` give the element offset of the chunk inside its (256-byte aligned) binding and `nb`
 * the number of images in it.
 */
import { buffers } from './common.js';

/** One kernel tap: index into the weight's tap dim, and the input offset it reads at (rows, cols). */
export interface Tap {
  w: number;
  dy: number;
  dx: number;
}

/** Where a convolution-like kernel reads and writes, per image. */
export interface StencilGeometry {
  /** Input A per image: [channels, height, width]. */
  aShape: [number, number, number];
  /** Output B per image: [channels, height, width]. */
  bShape: [number, number, number];
  /** Output grid [rows, cols]: grid position (gy, gx) is written at B[outStart + (gy, gx)·outStep]. */
  grid: [number, number];
  outStart: [number, number];
  outStep: [number, number];
  /** Grid position (gy, gx) reads A at (gy, gx)·inStride + (tap.dy, tap.dx). */
  inStride: [number, number];
  taps: Tap[];
}

export const UNIFORM_DECL = 'struct U { aOff: u32, bOff: u32, nb: u32, slot: u32 }';
const uniformBinding = (i: number) => `@group(0) @binding(${i}) var<uniform> u: U;`;

/** Whether some tap of some grid position reads outside A (so loads need a bounds mask). */
export function needsMask(g: Pick<StencilGeometry, 'aShape' | 'grid' | 'inStride' | 'taps'>): boolean {
  const [, ha, wa] = g.aShape;
  return g.taps.some(
    (t) => t.dy < 0 || t.dx < 0 || (g.grid[0] - 1) * g.inStride[0] + t.dy > ha - 1 || (g.grid[1] - 1) * g.inStride[1] + t.dx > wa - 1,
  );
}

/** The thread index of a 1-D kernel whose grid of 64-thread workgroups may be folded into 2-D. */
const MAIN = `@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;`;

export interface ArrangeParams {
  groups: number;
  /** Output channels per group (O / groups) and input channels per group (C / groups) of the weight. */
  opg: number;
  cpg: number;
  kk: number;
  /** 'forward': WT[g][tap][ci][oc]; 'data': WT[g][tap][oc][ci] (for the data gradient). */
  mode: 'forward' | 'data';
  /** The fastest dim padded with zeros to this length (a multiple of the kernel's channel tile). */
  pad: number;
}

/** Re-lays a weight [O, C/groups, kh, kw] out as [groups][tap][reduction channel][output channel padded]. */
export function arrangeWeightsKernel(p: ArrangeParams) {
  const [cin, cout] = p.mode === 'forward' ? [p.cpg, p.opg] : [p.opg, p.cpg];
  const total = p.groups * p.kk * cin * p.pad;
  const src = p.mode === 'forward' ? `((g * ${p.opg}u + b) * ${p.cpg}u + a) * ${p.kk}u + tap` : `((g * ${p.opg}u + a) * ${p.cpg}u + b) * ${p.kk}u + tap`;
  const code = `${buffers([['Wsrc', 'read'], ['WT', 'read_write']])}
${MAIN}
  if (t >= ${total}u) { return; }
  let b = t % ${p.pad}u;
  let r = t / ${p.pad}u;
  let a = r % ${cin}u;
  let r2 = r / ${cin}u;
  let tap = r2 % ${p.kk}u;
  let g = r2 / ${p.kk}u;
  let ok = b < ${cout}u;
  WT[t] = select(0.0, Wsrc[select(0u, ${src}, ok)], ok);
}`;
  return { code, workgroups: Math.ceil(total / 64), size: total };
}

export interface GconvParams extends StencilGeometry {
  groups: number;
  /** Reduction channels per group (channels of A) and output channels per group (of B). */
  cin: number;
  cout: number;
  /** Output channels per thread (multiple of 4); the arranged weight's channel dim is padded to it. */
  tileO: number;
  /** Taps in the arranged weight (kh·kw). */
  kk: number;
  bias: boolean;
}

const TP = 4;

/** Output channels per thread for `cout` channels per group. */
export function gconvTileO(cout: number): number {
  return cout <= 4 ? 4 : 8;
}

/** The implicit-GEMM convolution kernel; bindings A, WT, [bias], B, uniforms. */
export function gconvKernel(p: GconvParams) {
  const [ca, ha, wa] = p.aShape;
  const [cb, hb, wb] = p.bShape;
  const [gh, gw] = p.grid;
  const npix = gh * gw;
  const hwa = ha * wa;
  const tilesP = Math.ceil(npix / TP);
  const coutPad = Math.ceil(p.cout / p.tileO) * p.tileO;
  const tilesO = coutPad / p.tileO;
  const perImage = p.groups * tilesO * tilesP;
  const K4 = p.tileO / 4;
  const masked = needsMask(p);
  const t0 = p.taps[0];
  // 1x1, stride 1, no padding, over the whole image: four grid positions are one aligned vec4 of A.
  const vecA = p.taps.length === 1 && t0.dy === 0 && t0.dx === 0 && p.inStride[0] === 1 && p.inStride[1] === 1 &&
    gh === ha && gw === wa && hwa % 4 === 0;
  const J = [0, 1, 2, 3];
  const K = Array.from({ length: K4 }, (_, k) => k);
  const decl = buffers([
    ['A', 'read', vecA ? 'vec4<f32>' : 'f32'],
    ['WT', 'read', 'vec4<f32>'],
    ...(p.bias ? [['bias', 'read'] as [string, 'read']] : []),
    ['B', 'read_write'],
  ]);
  const tapList = p.taps.map((t) => `vec3<i32>(${t.w}, ${t.dy}, ${t.dx})`).join(', ');
  const loadA = vecA
    ? `let av = A[(ai + p0) / 4u];\n      ${J.map((j) => `let a${j} = av[${j}];`).join(' ')}`
    : J.map((j) => (masked ? `let a${j} = select(0.0, A[ai + o${j}], ok${j});` : `let a${j} = A[ai + o${j}];`)).join('\n      ');
  const code = `${UNIFORM_DECL}
${decl}
${uniformBinding(p.bias ? 4 : 3)}
var<private> TAPS: array<vec3<i32>, ${p.taps.length}> = array<vec3<i32>, ${p.taps.length}>(${tapList});
${MAIN}
  let pt = t % ${tilesP}u;
  let r = t / ${tilesP}u;
  let ot = r % ${tilesO}u;
  let r2 = r / ${tilesO}u;
  let g = r2 % ${p.groups}u;
  let n = r2 / ${p.groups}u;
  if (n >= u.nb) { return; }
  let p0 = pt * ${TP}u;
  ${J.map((j) => `let q${j} = min(p0 + ${j}u, ${npix - 1}u); let gy${j} = i32(q${j} / ${gw}u); let gx${j} = i32(q${j} % ${gw}u);`).join('\n  ')}
  ${K.flatMap((k) => J.map((j) => `var c${k}_${j} = vec4<f32>(0.0);`)).join(' ')}
  let aBase = u.aOff + n * ${ca * hwa}u + g * ${p.cin * hwa}u;
  let wBase = g * ${p.kk * p.cin * (coutPad / 4)}u + ot * ${K4}u;
  for (var ti = 0u; ti < ${p.taps.length}u; ti++) {
    let tp = TAPS[ti];
    ${J.map((j) => `let iy${j} = gy${j} * ${p.inStride[0]} + tp.y; let ix${j} = gx${j} * ${p.inStride[1]} + tp.z;`).join('\n    ')}
    ${J.map((j) => (masked ? `let ok${j} = iy${j} >= 0 && iy${j} < ${ha} && ix${j} >= 0 && ix${j} < ${wa}; let o${j} = select(0u, u32(iy${j} * ${wa} + ix${j}), ok${j});` : `let o${j} = u32(iy${j} * ${wa} + ix${j});`)).join('\n    ')}
    var ai = aBase;
    var wi = wBase + u32(tp.x) * ${p.cin * (coutPad / 4)}u;
    for (var c = 0u; c < ${p.cin}u; c++) {
      ${loadA}
      ${K.map((k) => `let w${k} = WT[wi + ${k}u];`).join(' ')}
      ${K.flatMap((k) => J.map((j) => `c${k}_${j} += a${j} * w${k};`)).join(' ')}
      ai += ${hwa}u;
      wi += ${coutPad / 4}u;
    }
  }
  let bBase = u.bOff + n * ${cb * hb * wb}u;
  let oc0 = ot * ${p.tileO}u;
  ${J.map((j) => `let pos${j} = u32((${p.outStart[0]} + gy${j} * ${p.outStep[0]}) * ${wb} + ${p.outStart[1]} + gx${j} * ${p.outStep[1]});`).join('\n  ')}
  ${K.flatMap((k) => J.map((e) => `if (oc0 + ${4 * k + e}u < ${p.cout}u) {
    let ch = g * ${p.cout}u + oc0 + ${4 * k + e}u;
    let ob = bBase + ch * ${hb * wb}u;
    let bv = ${p.bias ? 'bias[ch]' : '0.0'};
    ${J.map((j) => `if (p0 + ${j}u < ${npix}u) { B[ob + pos${j}] = c${k}_${j}[${e}] + bv; }`).join(' ')}
  }`)).join('\n  ')}
}`;
  return { code, perImage, coutPad, vecA };
}

export interface WeightGradParams {
  groups: number;
  opg: number;
  cpg: number;
  /** Input [C, H, W] and output-gradient [O, OH, OW] per image. */
  xShape: [number, number, number];
  yShape: [number, number, number];
  kh: number;
  kw: number;
  stride: [number, number];
  dilation: [number, number];
  /** Top and left padding. */
  pad: [number, number];
  /** Partial sums per chunk of images: the reduction over the chunk's output rows is split this many ways. */
  parts: number;
}

const WO = 4;
const WC = 4;

/** Threads of the weight-gradient kernel before the reduction is split into partials. */
export function weightGradThreads(groups: number, opg: number, cpg: number, kk: number): number {
  return groups * Math.ceil(opg / WO) * Math.ceil((cpg * kk) / WC);
}

/**
 * dW[o][c][tap] = Σ over images and output pixels of dY[o, pixel] · X[c, pixel·stride + tap offset],
 * a GEMM with a long reduction. Each thread computes 4 output channels × 4 (channel, tap) pairs over
 * one slice of the output rows and writes a partial sum to P[u.slot + slice]; the caller adds them.
 * Bindings X, dY, P, uniforms (aOff = X offset, bOff = dY offset).
 */
export function weightGradKernel(p: WeightGradParams) {
  const [c, h, w] = p.xShape;
  const [o, oh, ow] = p.yShape;
  const kk = p.kh * p.kw;
  const ckk = p.cpg * kk;
  const tilesO = Math.ceil(p.opg / WO);
  const tilesC = Math.ceil(ckk / WC);
  const perSlice = p.groups * tilesO * tilesC;
  const total = perSlice * p.parts;
  const J = Array.from({ length: WC }, (_, j) => j);
  const K = Array.from({ length: WO }, (_, k) => k);
  const code = `${UNIFORM_DECL}
${buffers([['X', 'read'], ['DY', 'read'], ['P', 'read_write']])}
${uniformBinding(3)}
${MAIN}
  if (t >= ${total}u) { return; }
  let ct = t % ${tilesC}u;
  let r = t / ${tilesC}u;
  let ot = r % ${tilesO}u;
  let r2 = r / ${tilesO}u;
  let g = r2 % ${p.groups}u;
  let s = r2 / ${p.groups}u;
  let rows = u.nb * ${oh}u;
  let rBeg = s * rows / ${p.parts}u;
  let rEnd = (s + 1u) * rows / ${p.parts}u;
  ${J.map((j) => `let cc${j} = min(ct * ${WC}u + ${j}u, ${ckk - 1}u); let tap${j} = cc${j} % ${kk}u; let ci${j} = g * ${p.cpg}u + cc${j} / ${kk}u;
  let ky${j} = i32(tap${j} / ${p.kw}u) * ${p.dilation[0]} - ${p.pad[0]}; let kx${j} = i32(tap${j} % ${p.kw}u) * ${p.dilation[1]} - ${p.pad[1]};`).join('\n  ')}
  ${K.map((k) => `let oc${k} = g * ${p.opg}u + min(ot * ${WO}u + ${k}u, ${p.opg - 1}u);`).join('\n  ')}
  ${K.flatMap((k) => J.map((j) => `var s${k}_${j} = 0.0;`)).join(' ')}
  for (var row = rBeg; row < rEnd; row++) {
    let n = row / ${oh}u;
    let oy = i32(row % ${oh}u);
    let xImg = u.aOff + n * ${c * h * w}u;
    let yRow = u.bOff + n * ${o * oh * ow}u + u32(oy) * ${ow}u;
    ${J.map((j) => `let iy${j} = oy * ${p.stride[0]} + ky${j}; let rok${j} = iy${j} >= 0 && iy${j} < ${h}; let xr${j} = xImg + ci${j} * ${h * w}u + u32(select(0, iy${j}, rok${j}) * ${w});`).join('\n    ')}
    ${K.map((k) => `let yr${k} = yRow + oc${k} * ${oh * ow}u;`).join(' ')}
    for (var ox = 0; ox < ${ow}; ox++) {
      ${J.map((j) => `let ix${j} = ox * ${p.stride[1]} + kx${j}; let x${j} = select(0.0, X[xr${j} + u32(clamp(ix${j}, 0, ${w - 1}))], rok${j} && ix${j} >= 0 && ix${j} < ${w});`).join('\n      ')}
      ${K.map((k) => `let d${k} = DY[yr${k} + u32(ox)];`).join(' ')}
      ${K.flatMap((k) => J.map((j) => `s${k}_${j} += d${k} * x${j};`)).join(' ')}
    }
  }
  let slot = (u.slot + s) * ${o * ckk}u;
  ${K.flatMap((k) => J.map((j) => `if (ot * ${WO}u + ${k}u < ${p.opg}u && ct * ${WC}u + ${j}u < ${ckk}u) { P[slot + oc${k} * ${ckk}u + cc${j}] = s${k}_${j}; }`)).join('\n  ')}
}`;
  return { code, workgroups: Math.ceil(total / 64) };
}

/**
 * Bias gradient partials: P[(u.slot + image) · parts + part][o] = Σ of dY[image, o] over one slice of
 * its pixels. Bindings dY, P, uniforms (bOff = dY offset).
 */
export function biasGradKernel(o: number, pixels: number, parts: number) {
  const seg = Math.ceil(pixels / parts);
  const code = `${UNIFORM_DECL}
${buffers([['DY', 'read'], ['P', 'read_write']])}
${uniformBinding(2)}
${MAIN}
  let oc = t % ${o}u;
  let r = t / ${o}u;
  let s = r % ${parts}u;
  let n = r / ${parts}u;
  if (n >= u.nb) { return; }
  let base = u.bOff + (n * ${o}u + oc) * ${pixels}u;
  var acc = 0.0;
  for (var q = s * ${seg}u; q < min((s + 1u) * ${seg}u, ${pixels}u); q++) { acc += DY[base + q]; }
  P[((u.slot + n) * ${parts}u + s) * ${o}u + oc] = acc;
}`;
  return { code, perImage: o * parts };
}
