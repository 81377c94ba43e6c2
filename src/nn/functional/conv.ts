/**
 * `conv2d` with PyTorch semantics (NCHW, weight [out, in/groups, kh, kw]) and its three gradients,
 * each its own kernel: the forward and the data gradient are the implicit-GEMM kernels of
 * shaders/conv.ts (the data gradient once per stride phase; 1x1 stride-1 convolutions a batched
 * matmul on the NCHW layout), the weight gradient a split reduction
 * over images and pixels, the bias gradient a per-channel sum. Depthwise convolutions
 * (groups = input channels) go to depthwise.ts.
 *
 * Tensors larger than one storage binding are processed a chunk of images at a time through
 * sub-range bindings; a single image must fit in one binding.
 */
import { deviceInfo, dispatch, releaseTexels, toTexels } from '../../tensor/device.js';
import { record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { permute, zeros } from '../../tensor/ops/index.js';
import { mm } from '../../tensor/ops/matmul.js';
import {
  ARRANGE_U, BIAS_U, GCONV_U, PACK_U, PATCH_U, SUBGROUP, WGRAD_U,
  arrangeWeightsKernel, biasGradKernel, gconvKernel, packKernel, patchKernel, tiledGconvKernel, weightGradKernel, weightGradThreads,
} from '../../shaders/conv.js';
import { pickTile, tilesPerWorkgroup } from '../../shaders/matmul.js';
import {
  TARGET_THREADS, bindImages, forImageChunks, forwardRows, forwardCols, geometry, imagesPerChunk, phases, reduceRows, roundUp, wgs,
  type Conv2dOptions, type Geo, type OutputGrid,
} from './conv-geometry.js';
import { depthwiseForward, depthwiseGradInput, depthwiseGradWeight } from './depthwise.js';

export { samePadding, type Conv2dOptions, type Conv2dPadding } from './conv-geometry.js';

/** Output channels per group from which the subgroup GEMM takes the matmul kernel's tiling (`tiledGconvKernel`). */
const TILED_MIN_COUT = 16;

/** Output channels per thread of `gconvKernel` and `weightGradKernel`. */
const threadTileO = (cout: number) => (cout <= 4 ? 4 : cout <= 8 ? 8 : 16);

/**
 * Register tile and subgroup use of the implicit GEMM for `cout` output channels per group and up to
 * `rows` output positions (all images) per group. `tiled`: [positions, channels per
 * lane] of `tiledGconvKernel`; otherwise `gconvKernel` with `tileO` × `tileP` per thread. `tileO`
 * is what the weights' output channels are padded to.
 */
function gemmTiles(cout: number, rows: number, groups: number) {
  const { subgroups, isCpu } = deviceInfo();
  const tiled = subgroups && cout >= TILED_MIN_COUT ? pickTile(rows, cout, groups, true, isCpu) : null;
  const tileO = tiled ? 8 * tiled[1] : threadTileO(cout);
  return { tileO, tileP: 4, subgroups, tiled, perWorkgroup: tilesPerWorkgroup(isCpu), channelMultiple: subgroups ? SUBGROUP : 4 };
}

// ---------------------------------------------------------------- packing and weights

/**
 * The GEMM's A operand: `perImage` elements of an NCHW tensor per image, packed per chunk of images
 * by `pack` into [image][group][pixel of ha×wa][channel, padded to cinPad].
 */
interface Operand { perImage: number; ha: number; wa: number; cinPad: number; pack: (dst: Tensor, n0: number, nb: number) => GPUBufferBinding }

/** Packs images [n0, n0 + nb) of NCHW `t` (cin channels per group, hw pixels) into `dst`; returns the packed range. */
function pack(g: Geo, t: Tensor, cin: number, hw: number, cinPad: number, dst: Tensor, n0: number, nb: number): GPUBufferBinding {
  const [src, aOff] = bindImages(t, g.groups * cin * hw, n0, nb);
  const range = { buffer: dst.buffer, offset: 0, size: nb * g.groups * hw * cinPad * 4 };
  const uniforms = PACK_U.pack({ aOff, nb, cin, hw, c4: cinPad / 4, groups: g.groups });
  dispatch({ name: 'conv2d_pack', detail: g.detail, code: packKernel(), workgroups: wgs((nb * g.groups * hw * cinPad) / 4), buffers: [src, range], uniforms });
  return range;
}

/** `t` (cin channels per group on h×w) packed channel-last. */
function channelsLast(g: Geo, t: Tensor, [cin, h, w]: [number, number, number], cinPad: number): Operand {
  return { perImage: g.groups * cin * h * w, ha: h, wa: w, cinPad, pack: (dst, n0, nb) => pack(g, t, cin, h * w, cinPad, dst, n0, nb) };
}

/** The forward's input `x` as patches (im2col): one packed pixel per output pixel, kPad channels (taps × channels). */
function patches(g: Geo, x: Tensor, kPad: number): Operand {
  const perImage = g.c * g.h * g.w;
  return {
    perImage, ha: g.oh, wa: g.ow, cinPad: kPad,
    pack: (dst, n0, nb) => {
      const [src, aOff] = bindImages(x, perImage, n0, nb);
      const uniforms = PATCH_U.pack({
        aOff, nb, cin: g.cpg, h: g.h, w: g.w, ow: g.ow, npix: g.oh * g.ow, c4: kPad / 4, groups: g.groups,
        kh: g.kh, kw: g.kw, sy: g.sh, sx: g.sw, dh: g.dh, dw: g.dw, top: g.top, left: g.left,
      });
      const range = { buffer: dst.buffer, offset: 0, size: nb * g.groups * g.oh * g.ow * kPad * 4 };
      dispatch({ name: 'conv2d_patches', detail: g.detail, code: patchKernel(), workgroups: wgs(nb * g.groups * g.oh * g.ow), buffers: [src, range], uniforms });
      return range;
    },
  };
}

/** The weight laid out for the GEMM: [group][tap][reduction channel, padded to rpad][output channel, padded to pad]. */
function arrange(w: Tensor, g: Geo, mode: 'forward' | 'data', rpad: number, pad: number): Tensor {
  const total = g.groups * g.kh * g.kw * rpad * pad;
  const wt = Tensor.empty([total], 'conv2d weights');
  const rows = g.groups * g.kh * g.kw * rpad;
  const uniforms = ARRANGE_U.pack({ opg: g.opg, cpg: g.cpg, kk: g.kh * g.kw, rpad, pad4: pad / 4, rows });
  dispatch({ name: 'conv2d_arrange_weights', detail: g.detail, code: arrangeWeightsKernel(mode), workgroups: wgs(rows), buffers: [w.buffer, wt.buffer], uniforms });
  return wt;
}

/**
 * Runs the implicit GEMM over chunks: A (NCHW, `cin` channels per group on an ha×wa image) is packed,
 * then each grid in `grids` is computed into B (cout channels per group on hb×wb).
 */
function gemm(
  name: string, g: Geo, a: Operand, b: Tensor, bb: [cout: number, hb: number, wb: number],
  wt: Tensor, tiles: ReturnType<typeof gemmTiles>, bias: Tensor | null, grids: OutputGrid[],
): void {
  const { ha, wa, cinPad } = a;
  const [cout, hb, wb] = bb;
  const perPacked = g.groups * ha * wa * cinPad;
  const perB = g.groups * cout * hb * wb;
  const nbMax = imagesPerChunk(g, [a.perImage, perPacked, perB]);
  const packed = Tensor.empty([nbMax * perPacked], 'conv2d packed operand');
  const lanes = tiles.subgroups ? SUBGROUP : 1;
  const coutPad = roundUp(cout, tiles.tileO);
  // The tiled kernel reads both operands as texels.
  const texels = (src: GPUBuffer | GPUBufferBinding) => (tiles.tiled ? toTexels(src) : src);
  const wtb = texels(wt.buffer);
  forImageChunks(g, [a.perImage, perPacked, perB], (_c, n0, nb) => {
    const ar = texels(a.pack(packed, n0, nb));
    const [br, bOff] = bindImages(b, perB, n0, nb);
    for (const q of grids) {
      const pixels = q.grid[0] * q.grid[1];
      const [tm, tn] = tiles.tiled ?? [tiles.tileP * lanes, 0];
      const blocks = Math.ceil(((tiles.tiled ? nb : 1) * pixels) / tm);
      const uniforms = GCONV_U.pack({
        bOff, nb, ha, wa, gh: q.grid[0], gw: q.grid[1], c4: cinPad / 4, cout, cs: coutPad / 4, groups: g.groups,
        hwb: hb * wb, wb, cb: g.groups * cout, blocks, tilesO: coutPad / tiles.tileO, kk: g.kh * g.kw, hasBias: bias ? 1 : 0,
        sy: q.inStride[0], sx: q.inStride[1], oy0: q.start[0], ox0: q.start[1], osy: q.step[0], osx: q.step[1],
        nky: q.rows.n, nkx: q.cols.n, kw: g.kw, ky0: q.rows.k0, kys: q.rows.ks, kx0: q.cols.k0, kxs: q.cols.ks,
        dy0: q.rows.d0, dys: q.rows.ds, dx0: q.cols.d0, dxs: q.cols.ds,
      });
      const tasks = (tiles.tiled ? 1 : nb) * g.groups * (coutPad / tiles.tileO) * blocks;
      dispatch({
        name, detail: g.detail, code: tiles.tiled ? tiledGconvKernel(tm, tn, tiles.perWorkgroup) : gconvKernel(tiles),
        workgroups: tiles.tiled ? Math.ceil(tasks / tiles.perWorkgroup) : wgs(tasks * lanes), buffers: [ar, wtb, (bias ?? wt).buffer, br], uniforms,
      });
    }
    if ('view' in ar) releaseTexels(ar);
  });
  if ('view' in wtb) releaseTexels(wtb);
  packed.dispose();
}

// ---------------------------------------------------------------- the op and its gradients

const isPointwise = (g: Geo) => g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.groups === 1 && g.top + g.bottom + g.left + g.right === 0;

/**
 * A 1x1, stride-1, unpadded, ungrouped convolution is a batched matmul on the NCHW layout itself
 * (weight [out, in] times each image's [in, pixels]), which skips packing and the weight re-layout.
 * Taken for images of at least 16 pixels: the matmul's lanes run along pixels, so smaller images
 * (EfficientNet's and ResNet's last stages at 64x64) leave most lanes idle, where the tiled GEMM
 * runs rows across images.
 */
const isPointwiseMatmul = (g: Geo) => isPointwise(g) && g.h * g.w >= 16;

/**
 * Weight gradient of a pointwise convolution on small images as one matmul, dy as [out, N·pixels]
 * times x as [in, N·pixels]ᵀ (channel-major copies): the reduction is over every pixel of the batch
 * instead of a few pixels per image, which the split weight-gradient kernel handles poorly.
 */
function pointwiseGradWeight(x: Tensor, dy: Tensor, g: Geo, wShape: number[]): Tensor {
  const channelMajor = (t: Tensor, c: number) => {
    const v = Tensor.view(t, [g.n, c, g.h * g.w]);
    const p = permute(v, [1, 0, 2]);
    v.dispose();
    return p;
  };
  const [yc, xc] = [channelMajor(dy, g.o), channelMajor(x, g.c)];
  const [yv, xv] = [Tensor.view(yc, [g.o, g.n * g.h * g.w]), Tensor.view(xc, [g.c, g.n * g.h * g.w])];
  const prod = mm(yv, xv, false, true);
  const out = Tensor.view(prod, wShape);
  for (const t of [yc, xc, yv, xv, prod]) t.dispose();
  return out;
}

/** op(weight as [out, in]) times each image of `t` as [channels, pixels], viewed as [N, channels', H, W]. */
function pointwise(t: Tensor, w: Tensor, g: Geo, transW: boolean): Tensor {
  const [rows, inner] = transW ? [g.c, g.o] : [g.o, g.c];
  const views = [Tensor.view(w, [g.o, g.c]), Tensor.view(t, [g.n, inner, g.h * g.w])];
  const prod = mm(views[0], views[1], transW);
  const out = Tensor.view(prod, [g.n, rows, g.h, g.w]);
  for (const v of [...views, prod]) v.dispose();
  return out;
}

function forward(x: Tensor, w: Tensor, bias: Tensor | null, g: Geo): Tensor {
  if (!bias && !g.depthwise && isPointwiseMatmul(g)) return pointwise(x, w, g, false);
  const out = Tensor.empty([g.n, g.o, g.oh, g.ow], 'conv2d');
  const grid = { start: [0, 0] as [number, number], step: [1, 1] as [number, number], grid: [g.oh, g.ow] as [number, number], inStride: [g.sh, g.sw] as [number, number], rows: forwardRows(g), cols: forwardCols(g) };
  if (g.depthwise) {
    depthwiseForward(x, w, bias, out, g, grid);
    return out;
  }
  const tiles = gemmTiles(g.opg, g.n * g.oh * g.ow, g.groups);
  const coutPad = roundUp(g.opg, tiles.tileO);
  if (tiles.tiled && g.cpg <= 4 && g.kh * g.kw > 1) {
    // Few input channels: reduce over taps × channels of the patches, one tap of the GEMM.
    const gp = { ...g, cpg: g.cpg * g.kh * g.kw, kh: 1, kw: 1 };
    const kPad = roundUp(gp.cpg, tiles.channelMultiple);
    const wt = arrange(w, gp, 'forward', kPad, coutPad);
    const one = { n: 1, k0: 0, ks: 0, d0: 0, ds: 0 };
    gemm('conv2d', gp, patches(g, x, kPad), out, [g.opg, g.oh, g.ow], wt, tiles, bias, [{ ...grid, inStride: [1, 1], rows: one, cols: one }]);
    wt.dispose();
    return out;
  }
  const cinPad = roundUp(g.cpg, tiles.channelMultiple);
  const wt = arrange(w, g, 'forward', cinPad, coutPad);
  gemm('conv2d', g, channelsLast(g, x, [g.cpg, g.h, g.w], cinPad), out, [g.opg, g.oh, g.ow], wt, tiles, bias, [grid]);
  wt.dispose();
  return out;
}

function backwardData(dy: Tensor, w: Tensor, g: Geo): Tensor {
  if (!g.depthwise && isPointwiseMatmul(g)) return pointwise(dy, w, g, true);
  const all = phases(g);
  const ps = all.filter((p) => p.rows.n && p.cols.n).map((p) => ({ ...p, step: [g.sh, g.sw] as [number, number], inStride: [1, 1] as [number, number] }));
  const dx = ps.length < all.length ? zeros([g.n, g.c, g.h, g.w]) : Tensor.empty([g.n, g.c, g.h, g.w], 'conv2d dInput');
  if (g.depthwise) {
    depthwiseGradInput(dy, w, dx, g, ps);
    return dx;
  }
  const tiles = gemmTiles(g.cpg, g.n * Math.max(...ps.map((p) => p.grid[0] * p.grid[1])), g.groups);
  const cinPad = roundUp(g.opg, tiles.channelMultiple);
  const wt = arrange(w, g, 'data', cinPad, roundUp(g.cpg, tiles.tileO));
  gemm('conv2d_grad_input', g, channelsLast(g, dy, [g.opg, g.oh, g.ow], cinPad), dx, [g.cpg, g.h, g.w], wt, tiles, null, ps);
  wt.dispose();
  return dx;
}

function backwardWeight(x: Tensor, dy: Tensor, g: Geo, wShape: number[]): Tensor {
  const xPer = g.c * g.h * g.w;
  const yPer = g.o * g.oh * g.ow;
  const kk = g.kh * g.kw;
  if (g.depthwise) return depthwiseGradWeight(x, dy, g, wShape);
  if (isPointwise(g) && g.h * g.w < 16) return pointwiseGradWeight(x, dy, g, wShape);
  const tileO = threadTileO(g.opg);
  const cpgPad = roundUp(g.cpg, 4);
  const opgPad = roundUp(g.opg, tileO);
  const sizes = [xPer, yPer, g.groups * g.h * g.w * cpgPad, g.groups * g.oh * g.ow * opgPad];
  const nb = imagesPerChunk(g, sizes);
  const threads = weightGradThreads(tileO, g.groups, opgPad, cpgPad, kk);
  const parts = Math.max(1, Math.min(Math.ceil(TARGET_THREADS / threads), g.oh * nb));
  const partial = Tensor.empty([Math.ceil(g.n / nb) * parts, g.o * g.cpg * kk], 'conv2d dWeight partials');
  const xPacked = Tensor.empty([nb * sizes[2]], 'conv2d packed input');
  const yPacked = Tensor.empty([nb * sizes[3]], 'conv2d packed gradient');
  const code = weightGradKernel(tileO);
  forImageChunks(g, sizes, (chunk, n0, nbc) => {
    const xa = pack(g, x, g.cpg, g.h * g.w, cpgPad, xPacked, n0, nbc);
    const ya = pack(g, dy, g.opg, g.oh * g.ow, opgPad, yPacked, n0, nbc);
    const uniforms = WGRAD_U.pack({
      nb: nbc, slot: chunk * parts, h: g.h, w: g.w, oh: g.oh, ow: g.ow, c4: cpgPad / 4, o4: opgPad / 4, kw: g.kw, kk,
      sy: g.sh, sx: g.sw, dh: g.dh, dw: g.dw, top: g.top, left: g.left, opg: g.opg, cpg: g.cpg, groups: g.groups,
      tilesO: opgPad / tileO, parts,
    });
    dispatch({ name: 'conv2d_grad_weight', detail: g.detail, code, workgroups: wgs(threads * parts), buffers: [xa, ya, partial.buffer], uniforms });
  });
  xPacked.dispose();
  yPacked.dispose();
  return reduceRows(partial, wShape);
}


function backwardBias(dy: Tensor, g: Geo): Tensor {
  const pixels = g.oh * g.ow;
  const yPer = g.o * pixels;
  const parts = Math.max(1, Math.min(Math.ceil(TARGET_THREADS / (g.n * g.o)), Math.ceil(pixels / 256)));
  const partial = Tensor.empty([g.n * parts, g.o], 'conv2d dBias partials');
  forImageChunks(g, [yPer], (_c, n0, nb) => {
    const [yb, bOff] = bindImages(dy, yPer, n0, nb);
    const uniforms = BIAS_U.pack({ bOff, nb, slot: n0, o: g.o, pixels, parts, seg: Math.ceil(pixels / parts) });
    dispatch({ name: 'conv2d_grad_bias', detail: g.detail, code: biasGradKernel(), workgroups: wgs(nb * g.o * parts), buffers: [yb, partial.buffer], uniforms });
  });
  return reduceRows(partial, [g.o]);
}

/**
 * 2-D convolution (cross-correlation) like `torch.nn.functional.conv2d`: input [N, C, H, W],
 * weight [out, C/groups, kh, kw], optional bias [out]; returns [N, out, OH, OW]. Differentiable in
 * all three. `groups = C` (depthwise, out = C·multiplier) runs on specialised kernels.
 */
export function conv2d(input: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const b = bias ?? null;
  const g = geometry(input, weight, b, opts);
  if (g.n === 0) return Tensor.empty([0, g.o, g.oh, g.ow], 'conv2d');
  const out = forward(input, weight, b, g);
  return record('conv2d', b ? [input, weight, b] : [input, weight], out, (dy) => [
    input.requiresGrad ? backwardData(dy, weight, g) : null,
    weight.requiresGrad ? backwardWeight(input, dy, g, weight.shape) : null,
    b?.requiresGrad ? backwardBias(dy, g) : null,
  ]);
}
