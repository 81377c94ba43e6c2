/**
 * Grouped 2-D convolution as an implicit GEMM, float32.
 *
 * The operand that is reduced over channels is first packed ([image][group][pixel][channel], channels
 * zero-padded) so that channels are contiguous: four of them are one vec4 load; with few input
 * channels the forward packs patches instead (`patchKernel`, im2col). `tiledGconvKernel` (subgroups,
 * 16+ output channels) and `gconvKernel` (the rest) then serve the forward pass and the data
 * gradient: for every position of an output grid they sum over taps and packed channels of
 * A[position·stride + tap offset] · W. The data gradient runs once per stride phase (input pixels
 * equal modulo the stride), where only the taps that land on an output pixel take part, so no zeros
 * are inserted. `gconvKernel` keeps `tileO` output channels × `tileP` positions per thread; with
 * subgroups, 8 lanes take adjacent positions and share the weights (each lane loads one channel's and
 * the others read them by shuffle). `tiledGconvKernel` is the matmul kernel's tiling. The weight
 * gradient is the same GEMM with the reduction over pixels. Lavapipe turns each storage load into
 * per-lane loads with bounds checks, so loads per FMA is what counts; workgroup shared memory would
 * only add loads.
 *
 * Only the tile shape, the flags and the number of unrolled steps are compiled in: sizes, strides,
 * paddings and taps are runtime uniforms, so one pipeline serves every layer of a network
 * (compiling one of these kernels takes lavapipe a second or more). Tensors larger than one binding
 * are processed a chunk of images at a time (`aOff`/`bOff`: element offsets of the chunk inside its
 * 256-byte aligned binding, `nb`: images in the chunk).
 */
import { buffers, memoize, texel } from './common.js';
import { accumulators, subgroupChunk, tileInvocation } from './matmul.js';

/**
 * A uniform block: fields in order (the first four shared by every kernel here), i32 where listed.
 * `pack` lays values out in the same order, so the WGSL and the host can never disagree.
 */
export function uniformLayout(fields: string[], signed: string[] = []) {
  const all = ['aOff', 'bOff', 'nb', 'slot', ...fields];
  return {
    decl: `struct U { ${all.map((f) => `${f}: ${signed.includes(f) ? 'i32' : 'u32'}`).join(', ')} }`,
    pack(values: Record<string, number>): Uint32Array {
      const words = new Int32Array(all.length);
      all.forEach((f, i) => {
        const v = values[f] ?? 0;
        if (!Number.isInteger(v)) throw new Error(`uniform ${f} = ${v} is not an integer`);
        words[i] = v;
      });
      return new Uint32Array(words.buffer);
    },
  };
}

export const uniformBinding = (i: number) => `@group(0) @binding(${i}) var<uniform> u: U;`;

/** The thread index of a 1-D kernel whose grid of 64-thread workgroups may be folded into 2-D. */
export const MAIN = `@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;`;

/** Lanes that share weights through subgroup shuffles (lavapipe's subgroup size on 256-bit SIMD). */
export const SUBGROUP = 8;
const SG_HEADER = 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n';

// ---------------------------------------------------------------- packing

export const PACK_U = uniformLayout(['cin', 'hw', 'c4', 'groups']);

/**
 * NCHW images (at element offset u.aOff, u.nb of them) → [image][group][pixel][channel], channels
 * zero-padded to 4·u.c4. One thread per output vec4. Bindings SRC, DST (vec4), uniforms.
 */
export function packKernel(): string {
  return `${PACK_U.decl}
${buffers([['SRC', 'read'], ['DST', 'read_write', 'vec4<f32>']])}
${uniformBinding(2)}
${MAIN}
  let pix = t % u.hw;
  let r = t / u.hw;
  let cb = r % u.c4;
  let gn = r / u.c4;
  if (gn >= u.nb * u.groups) { return; }
  let src = u.aOff + (gn * u.cin + cb * 4u) * u.hw + pix;
  var v = vec4<f32>(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (cb * 4u + e < u.cin) { v[e] = SRC[src + e * u.hw]; }
  }
  DST[(gn * u.hw + pix) * u.c4 + cb] = v;
}`;
}

export const PATCH_U = uniformLayout(['cin', 'h', 'w', 'ow', 'npix', 'c4', 'groups', 'kh', 'kw', 'sy', 'sx', 'dh', 'dw', 'top', 'left'], ['h', 'w', 'sy', 'sx', 'dh', 'dw', 'top', 'left']);

/**
 * The forward's patches (im2col), for inputs with few channels per group: NCHW images (at element
 * offset u.aOff, u.nb of them) → [image][group][output pixel][channel·kh·kw + tap], zero-padded to
 * 4·u.c4, so the GEMM reduces over all taps and channels at once instead of padding each tap's few
 * channels to 8. One thread per output pixel walks the taps with counters (lavapipe divides by
 * uniforms lane by lane). Bindings SRC, DST (vec4), uniforms.
 */
export function patchKernel(): string {
  const E = [0, 1, 2, 3];
  return `${PATCH_U.decl}
${buffers([['SRC', 'read'], ['DST', 'read_write', 'vec4<f32>']])}
${uniformBinding(2)}
${MAIN}
  let pix = t % u.npix;
  let gn = t / u.npix;
  if (gn >= u.nb * u.groups) { return; }
  let y0 = i32(pix / u.ow) * u.sy - u.top;
  let x0 = i32(pix % u.ow) * u.sx - u.left;
  let img = u.aOff + gn * u.cin * u32(u.h * u.w);
  var c = 0u;
  var ky = 0u;
  var kx = 0u;
  for (var q = 0u; q < u.c4; q++) {
    ${E.map((e) => `let iy${e} = y0 + i32(ky) * u.dh;
    let ix${e} = x0 + i32(kx) * u.dw;
    let ok${e} = c < u.cin && iy${e} >= 0 && iy${e} < u.h && ix${e} >= 0 && ix${e} < u.w;
    let v${e} = select(0.0, SRC[select(img, img + c * u32(u.h * u.w) + u32(iy${e} * u.w + ix${e}), ok${e})], ok${e});
    kx += 1u; ky = select(ky, ky + 1u, kx == u.kw); kx = select(kx, 0u, kx == u.kw);
    c = select(c, c + 1u, ky == u.kh); ky = select(ky, 0u, ky == u.kh);`).join('\n    ')}
    DST[t * u.c4 + q] = vec4<f32>(v0, v1, v2, v3);
  }
}`;
}

// ---------------------------------------------------------------- weights

export const ARRANGE_U = uniformLayout(['opg', 'cpg', 'kk', 'rpad', 'pad4', 'rows']);

/**
 * Re-lays a weight [O, C/groups, kh, kw] out as WT[group][tap][reduction channel][output channel],
 * both channel dims zero-padded (to u.rpad and 4·u.pad4). 'forward' reduces over input channels;
 * 'data' (the data gradient) over output channels. One thread per (group, tap, reduction channel)
 * row writing vec4s: per-element index arithmetic would divide by uniforms, which lavapipe does
 * lane by lane. Bindings Wsrc, WT (vec4), uniforms.
 */
export function arrangeWeightsKernel(mode: 'forward' | 'data'): string {
  const E = [0, 1, 2, 3];
  // Output and input channel of element q·4 + e of reduction row a.
  const oc = (e: number) => (mode === 'forward' ? `q * 4u + ${e}u` : 'a');
  const ic = (e: number) => (mode === 'forward' ? 'a' : `q * 4u + ${e}u`);
  return `${ARRANGE_U.decl}
${buffers([['Wsrc', 'read'], ['WT', 'read_write', 'vec4<f32>']])}
${uniformBinding(2)}
${MAIN}
  if (t >= u.rows) { return; }
  let a = t % u.rpad;
  let r = t / u.rpad;
  let tap = r % u.kk;
  let g = r / u.kk;
  for (var q = 0u; q < u.pad4; q++) {
    ${E.map((e) => `let ok${e} = ${oc(e)} < u.opg && ${ic(e)} < u.cpg;`).join('\n    ')}
    ${E.map((e) => `let v${e} = select(0.0, Wsrc[select(0u, ((g * u.opg + ${oc(e)}) * u.cpg + ${ic(e)}) * u.kk + tap, ok${e})], ok${e});`).join('\n    ')}
    WT[t * u.pad4 + q] = vec4<f32>(v0, v1, v2, v3);
  }
}`;
}

// ---------------------------------------------------------------- implicit GEMM

/**
 * Runtime geometry of `gconvKernel`. Grid position (gy, gx) is written at B[(oy0 + gy·osy)·wb +
 * ox0 + gx·osx] and reads A at (gy·sy + dy, gx·sx + dx) for the taps i < nky, j < nkx with weight
 * tap (ky0 + i·kys)·kw + kx0 + j·kxs and offsets dy = dy0 + i·dys, dx = dx0 + j·dxs.
 */
export const GCONV_U = uniformLayout(
  ['ha', 'wa', 'gh', 'gw', 'c4', 'cout', 'cs', 'groups', 'hwb', 'wb', 'cb', 'blocks', 'tilesO', 'kk', 'hasBias', 'sy', 'sx',
    'oy0', 'ox0', 'osy', 'osx', 'nky', 'nkx', 'kw', 'ky0', 'kys', 'kx0', 'kxs', 'dy0', 'dys', 'dx0', 'dxs'],
  ['ha', 'wa', 'sy', 'sx', 'dy0', 'dys', 'dx0', 'dxs'],
);

export interface GconvParams {
  /** Output channels per thread (multiple of 4). */
  tileO: number;
  /** Grid positions per thread. */
  tileP: number;
  /** Share weights across 8-lane subgroups (packed channels must then be a multiple of 8). */
  subgroups: boolean;
}

/**
 * Bindings A (packed chunk, vec4), WT (vec4), bias (read when u.hasBias is 1; any buffer otherwise),
 * B (at element offset u.bOff), uniforms.
 */
export const gconvKernel = memoize((p: GconvParams): string => {
  const TP = p.tileP;
  const lanes = p.subgroups ? SUBGROUP : 1;
  const K4 = p.tileO / 4;
  const J = Array.from({ length: TP }, (_, j) => j);
  const K = Array.from({ length: K4 }, (_, k) => k);
  const loadA = (v: string, c4i: string) => J.map((j) => `let ${v}${j} = select(vec4<f32>(0.0), A[o${j} + ${c4i}], ok${j});`).join(' ');
  const fma = (a: (j: number) => string) => K.flatMap((k) => J.map((j) => `c${k}_${j} += ${a(j)} * w${k};`)).join(' ');
  // Four channels per step: one vec4 of A per position, one vec4 of weights per 4 output channels and channel.
  const plain = `for (var cq = 0u; cq < u.c4; cq++) {
      ${loadA('a', 'cq')}
      let wq = wi + cq * 4u * u.cs;
      ${[0, 1, 2, 3].map((e) => `{ ${K.map((k) => `let w${k} = WT[wq + ${e}u * u.cs + ${k}u];`).join(' ')}
        ${fma((j) => `a${j}[${e}]`)} }`).join('\n      ')}
    }`;
  // Eight channels per step: in each aligned group of 8 subgroup lanes, lane l loads the weights of
  // channel c0 + l and the others read them by shuffle (correct for any subgroup size that is a
  // multiple of 8; other sizes take the plain loop).
  const shared = `if (sgsize % ${SUBGROUP}u != 0u) {
      ${plain}
    } else {
    for (var c0 = 0u; c0 < u.c4 * 4u; c0 += ${SUBGROUP}u) {
      let wl = wi + (c0 + (sid & ${SUBGROUP - 1}u)) * u.cs;
      ${K.map((k) => `let m${k} = WT[wl + ${k}u];`).join(' ')}
      ${loadA('a', 'c0 / 4u')}
      ${loadA('b', 'c0 / 4u + 1u')}
      ${Array.from({ length: SUBGROUP }, (_, s) => `{ ${K.map((k) => `let w${k} = subgroupShuffle(m${k}, sbase + ${s}u);`).join(' ')}
        ${fma((j) => `${s < 4 ? 'a' : 'b'}${j}[${s % 4}]`)} }`).join('\n      ')}
    }
    }`;
  return `${p.subgroups ? SG_HEADER : ''}${GCONV_U.decl}
${buffers([['A', 'read', 'vec4<f32>'], ['WT', 'read', 'vec4<f32>'], ['bias', 'read'], ['B', 'read_write']])}
${uniformBinding(4)}
${p.subgroups ? MAIN.replace(') {', ', @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) sgsize: u32) {') : MAIN}
  let lane = t % ${lanes}u;
  let sg = t / ${lanes}u;
  let pb = sg % u.blocks;
  let r = sg / u.blocks;
  let ot = r % u.tilesO;
  let r2 = r / u.tilesO;
  let g = r2 % u.groups;
  // Threads past the chunk compute on clamped indices and store nothing: an early return would put
  // every later update under lavapipe's execution mask.
  let live = r2 / u.groups < u.nb;
  let n = min(r2 / u.groups, u.nb - 1u);
  let npix = u.gh * u.gw;
  ${p.subgroups ? `let sbase = sid & ~${SUBGROUP - 1}u;` : ''}
  let p0 = (pb * ${lanes}u + lane) * ${TP}u;
  ${J.map((j) => `let q${j} = min(p0 + ${j}u, npix - 1u); let gy${j} = i32(q${j} / u.gw); let gx${j} = i32(q${j} % u.gw);`).join('\n  ')}
  ${K.flatMap((k) => J.map((j) => `var c${k}_${j} = vec4<f32>(0.0);`)).join(' ')}
  let aImg = (n * u.groups + g) * u32(u.ha * u.wa) * u.c4;
  let wBase = g * u.kk * u.c4 * 4u * u.cs + ot * ${K4}u;
  for (var ti = 0u; ti < u.nky * u.nkx; ti++) {
    let ti0 = ti / u.nkx;
    let ti1 = ti % u.nkx;
    let ty = u.dy0 + i32(ti0) * u.dys;
    let tx = u.dx0 + i32(ti1) * u.dxs;
    ${J.map((j) => `let iy${j} = gy${j} * u.sy + ty; let ix${j} = gx${j} * u.sx + tx;`).join('\n    ')}
    ${J.map((j) => `let ok${j} = iy${j} >= 0 && iy${j} < u.ha && ix${j} >= 0 && ix${j} < u.wa; let o${j} = aImg + u32(select(0, iy${j} * u.wa + ix${j}, ok${j})) * u.c4;`).join('\n    ')}
    let wi = wBase + ((u.ky0 + ti0 * u.kys) * u.kw + u.kx0 + ti1 * u.kxs) * u.c4 * 4u * u.cs;
    ${p.subgroups ? shared : plain}
  }
  if (!live) { return; }
  let oc0 = ot * ${p.tileO}u;
  let bImg = u.bOff + (n * u.cb + g * u.cout) * u.hwb;
  ${J.map((j) => `let pos${j} = (u.oy0 + u32(gy${j}) * u.osy) * u.wb + u.ox0 + u32(gx${j}) * u.osx;`).join('\n  ')}
  ${K.flatMap((k) => [0, 1, 2, 3].map((e) => `if (oc0 + ${4 * k + e}u < u.cout) {
    let ob = bImg + (oc0 + ${4 * k + e}u) * u.hwb;
    let bv = select(0.0, bias[(g * u.cout + oc0 + ${4 * k + e}u) * u.hasBias], u.hasBias != 0u);
    ${J.map((j) => `if (p0 + ${j}u < npix) { B[ob + pos${j}] = c${k}_${j}[${e}] + bv; }`).join(' ')}
  }`)).join('\n  ')}
}`;
});

/**
 * The implicit GEMM on 8-lane subgroups, the matmul kernel's scheme (shaders/matmul.ts): a
 * workgroup is one subgroup computing \`tm\` grid positions × 8·\`tn\` output channels, each lane
 * \`tn\` channels of every position. Per tap and 8 packed channels, each lane loads one vec4 of A
 * for a quarter of the positions and \`subgroupBroadcast\` hands it to the others, while each lane
 * loads its own weights (WT padded to whole tiles, so no checks). A and WT are read as texels (see
 * matmul). Same uniforms as \`gconvKernel\`, with u.blocks row tiles and u.tilesO channel tiles;
 * packed channels a multiple of 8. Rows run across images so that small grids fill the tiles.
 * `perWorkgroup` tiles per workgroup (`tilesPerWorkgroup`: 1 on a CPU, where lane = subgroup lane;
 * more on a GPU, where the 8 lanes of a tile share A by shuffle). Bindings A (texels), WT
 * (texels), bias, B, uniforms.
 */
export const tiledGconvKernel = memoize((tm: number, tn: number, perWorkgroup: number): string => {
  const NQ = tn / 4;
  const R = Array.from({ length: tm / 4 }, (_, i) => i);
  const [accDecl, res] = accumulators(tm, NQ);
  const shared = perWorkgroup > 1;
  const chunk = subgroupChunk(tm, NQ, (i) => `select(vec4<f32>(0.0), ${texel('A', `o${i} + c`)}, ok${i})`, (s, q) => texel('WT', `wi + (c * 4u + ${s}u) * u.cs + ${q}u`), [], 1, shared);
  return `${SG_HEADER}${GCONV_U.decl}
${buffers([['A', 'texels'], ['WT', 'texels'], ['bias', 'read'], ['B', 'read_write']])}
${uniformBinding(4)}
@compute @workgroup_size(${SUBGROUP * perWorkgroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sg: u32) {
  ${tileInvocation(perWorkgroup, true)}
  let pb = w % u.blocks;
  let r = w / u.blocks;
  let ot = r % u.tilesO;
  let g = r / u.tilesO;
  // Past the last tile: a folded grid's spare workgroups, or a partly filled last workgroup.
  if (g >= u.groups) { return; }
  let npix = u.gh * u.gw;
  let rows = u.nb * npix;
  let row0 = pb * ${tm}u;
  // The rows (image, position) whose A this lane loads: 4i + lane/2, channels 4·(lane % 2) .. +3 of each 8.
  ${R.map((i) => `let q${i} = min(row0 + ${4 * i}u + lane / 2u, rows - 1u); let p${i} = q${i} % npix; let gy${i} = i32(p${i} / u.gw) * u.sy; let gx${i} = i32(p${i} % u.gw) * u.sx;
  let aImg${i} = (q${i} / npix * u.groups + g) * u32(u.ha * u.wa) * u.c4 + lane % 2u;`).join('\n  ')}
  let wBase = g * u.kk * u.c4 * 4u * u.cs + ot * ${2 * tn}u + li * ${NQ}u;
  ${accDecl}
  for (var ti = 0u; ti < u.nky * u.nkx; ti++) {
    let ti0 = ti / u.nkx;
    let ti1 = ti % u.nkx;
    let ty = u.dy0 + i32(ti0) * u.dys;
    let tx = u.dx0 + i32(ti1) * u.dxs;
    ${R.map((i) => `let iy${i} = gy${i} + ty; let ix${i} = gx${i} + tx; let ok${i} = iy${i} >= 0 && iy${i} < u.ha && ix${i} >= 0 && ix${i} < u.wa; let o${i} = aImg${i} + u32(select(0, iy${i} * u.wa + ix${i}, ok${i})) * u.c4;`).join('\n    ')}
    let wi = wBase + ((u.ky0 + ti0 * u.kys) * u.kw + u.kx0 + ti1 * u.kxs) * u.c4 * 4u * u.cs;
    for (var c = 0u; c < u.c4; c += 2u) {
    ${chunk}
    }
  }
  ${res}
  let col0 = ot * ${8 * tn}u + li * ${tn}u;
  // The bound depends on the rows so that LLVM does not unroll the loop (which multiplied compile time).
  for (var i = 0u; i < min(${tm * NQ}u, (rows - row0) * ${NQ}u); i++) {
    let q = row0 + i / ${NQ}u;
    let p = q % npix;
    let oc = col0 + i % ${NQ}u * 4u;
    let pos = u.bOff + (q / npix * u.cb + g * u.cout) * u.hwb + (u.oy0 + p / u.gw * u.osy) * u.wb + u.ox0 + p % u.gw * u.osx;
    ${[0, 1, 2, 3].map((e) => `if (oc + ${e}u < u.cout) { B[pos + (oc + ${e}u) * u.hwb] = res[i][${e}] + select(0.0, bias[(g * u.cout + oc + ${e}u) * u.hasBias], u.hasBias != 0u); }`).join('\n    ')}
  }
}`;
});

// ---------------------------------------------------------------- weight gradient

/**
 * Runtime geometry of `weightGradKernel`: input h×w (packed to 4·c4 channels per group), output
 * gradient oh×ow (packed to 4·o4), the forward's kernel width, taps, stride, dilation and top/left
 * padding, real channel counts, and how the work is split.
 */
export const WGRAD_U = uniformLayout(
  ['h', 'w', 'oh', 'ow', 'c4', 'o4', 'kw', 'kk', 'sy', 'sx', 'dh', 'dw', 'top', 'left', 'opg', 'cpg', 'groups', 'tilesO', 'parts'],
  ['h', 'w', 'sy', 'sx', 'dh', 'dw', 'top', 'left'],
);

/** Threads per partial sum of `weightGradKernel`: output-channel tiles × (tap, 4 input channels) pairs. */
export function weightGradThreads(tileO: number, groups: number, opgPad: number, cpgPad: number, kk: number): number {
  return groups * (opgPad / tileO) * kk * (cpgPad / 4);
}

/**
 * dW[o][c][tap] = Σ over images and output pixels of dY[o, pixel] · X[c, pixel·stride + tap offset],
 * over packed dY and X. A thread owns `tileO` output channels (the packed dY is padded to a multiple)
 * × 4 input channels of one tap, and reduces over one slice of the chunk's output rows into
 * P[u.slot + slice][o][c][tap]. Adjacent threads take adjacent (tap, channel) pairs and so read the
 * same dY values. (Sharing dY through subgroup broadcasts, as the forward shares weights, measured
 * slower here.) Bindings XP, DYP (packed chunks), P, uniforms.
 */
export const weightGradKernel = memoize((tileO: number): string => {
  const K4 = tileO / 4;
  const K = Array.from({ length: K4 }, (_, k) => k);
  const E = [0, 1, 2, 3];
  return `${WGRAD_U.decl}
${buffers([['XP', 'read', 'vec4<f32>'], ['DYP', 'read', 'vec4<f32>'], ['P', 'read_write']])}
${uniformBinding(3)}
${MAIN}
  let pairs = u.kk * u.c4;
  let pair = t % pairs;
  let r0 = t / pairs;
  let ot = r0 % u.tilesO;
  let r1 = r0 / u.tilesO;
  let g = r1 % u.groups;
  let live = r1 / u.groups < u.parts;
  let s = min(r1 / u.groups, u.parts - 1u);
  let tap = pair / u.c4;
  let cq = pair % u.c4;
  let ky = i32(tap / u.kw) * u.dh - u.top;
  let kx = i32(tap % u.kw) * u.dw - u.left;
  let rows = u.nb * u.oh;
  let rBeg = s * rows / u.parts;
  let rEnd = (s + 1u) * rows / u.parts;
  ${K.flatMap((k) => E.map((e) => `var s${k}_${e} = vec4<f32>(0.0);`)).join(' ')}
  // Every thread runs the longest slice's trip count (uniform loop bounds; rows past its slice add zeros).
  for (var i = 0u; i < (rows + u.parts - 1u) / u.parts; i++) {
    let row = min(rBeg + i, rEnd - 1u);
    let rowLive = rBeg + i < rEnd;
    let img = (row / u.oh) * u.groups + g;
    let oy = row % u.oh;
    let iy = i32(oy) * u.sy + ky;
    let rok = iy >= 0 && iy < u.h;
    let xr = (img * u32(u.h * u.w) + u32(select(0, iy, rok) * u.w)) * u.c4 + cq;
    let yr = (img * u.oh * u.ow + oy * u.ow) * u.o4 + ot * ${K4}u;
    for (var ox = 0u; ox < u.ow; ox++) {
      let ix = i32(ox) * u.sx + kx;
      let ok = rok && ix >= 0 && ix < u.w;
      let x = select(vec4<f32>(0.0), XP[xr + u32(select(0, ix, ok)) * u.c4], ok);
      ${K.map((k) => `let d${k} = select(vec4<f32>(0.0), DYP[yr + ox * u.o4 + ${k}u], rowLive);`).join(' ')}
      ${K.flatMap((k) => E.map((e) => `s${k}_${e} += d${k}[${e}] * x;`)).join(' ')}
    }
  }
  if (!live) { return; }
  let slot = (u.slot + s) * u.groups * u.opg * u.cpg * u.kk + tap;
  ${K.flatMap((k) => E.map((e) => `if (ot * ${tileO}u + ${4 * k + e}u < u.opg) {
    let row = (g * u.opg + ot * ${tileO}u + ${4 * k + e}u) * u.cpg;
    ${E.map((f) => `if (cq * 4u + ${f}u < u.cpg) { P[slot + (row + cq * 4u + ${f}u) * u.kk] = s${k}_${e}[${f}]; }`).join(' ')}
  }`)).join('\n  ')}
}`;
});

// ---------------------------------------------------------------- bias gradient

export const BIAS_U = uniformLayout(['o', 'pixels', 'parts', 'seg']);

/**
 * Bias gradient partials: P[(u.slot + image) · parts + part][o] = Σ of dY[image, o] over one segment
 * of its pixels. Bindings dY (at element offset u.bOff), P, uniforms.
 */
export function biasGradKernel(): string {
  return `${BIAS_U.decl}
${buffers([['DY', 'read'], ['P', 'read_write']])}
${uniformBinding(2)}
${MAIN}
  let oc = t % u.o;
  let r = t / u.o;
  let s = r % u.parts;
  let n = r / u.parts;
  if (n >= u.nb) { return; }
  let base = u.bOff + (n * u.o + oc) * u.pixels;
  var acc = 0.0;
  for (var q = s * u.seg; q < min((s + 1u) * u.seg, u.pixels); q++) { acc += DY[base + q]; }
  P[((u.slot + n) * u.parts + s) * u.o + oc] = acc;
}`;
}
