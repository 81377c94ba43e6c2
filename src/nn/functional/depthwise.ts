/**
 * Depthwise convolution (groups = input channels, any channel multiplier): the stencil kernels of
 * shaders/depthwise.ts for the forward pass and the data gradient, and a split reduction for the
 * weight gradient. Called by conv2d, which checks the operands.
 */
import { dispatch } from '../../tensor/device.js';
import { Tensor } from '../../tensor/tensor.js';
import { DW_WGRAD_U, STENCIL_U, dwWeightGradKernel, segmentWidth, stencilKernel } from '../../shaders/depthwise.js';
import { TARGET_THREADS, bindImages, forImageChunks, imagesPerChunk, reduceRows, wgs, type Geo, type OutputGrid } from './conv-geometry.js';

/** Runs the depthwise stencil over chunks of images (A: ca channels on ha×wa, B: cb on hb×wb). */
function stencil(
  name: string, g: Geo, mode: 'forward' | 'data', a: Tensor, ab: [number, number, number], w: Tensor, bias: Tensor | null, b: Tensor, bb: [number, number, number],
  q: OutputGrid,
): void {
  const [ca, ha, wa] = ab;
  const [cb, hb, wb] = bb;
  const tw = segmentWidth(q.grid[1]);
  const tilesX = Math.ceil(q.grid[1] / tw);
  const code = stencilKernel({ tw, sx: q.inStride[1], nkx: q.cols.n, dxs: q.cols.ds, mode, bias: !!bias });
  forImageChunks(g, [ca * ha * wa, cb * hb * wb], (_c, n0, nb) => {
    const [ar, aOff] = bindImages(a, ca * ha * wa, n0, nb);
    const [br, bOff] = bindImages(b, cb * hb * wb, n0, nb);
    const uniforms = STENCIL_U.pack({
      aOff, bOff, nb, ca, ha, wa, cb, hwb: hb * wb, wb, gh: q.grid[0], gw: q.grid[1], tilesX, mult: g.opg, kk: g.kh * g.kw, kw: g.kw,
      oy0: q.start[0], ox0: q.start[1], osy: q.step[0], osx: q.step[1], sy: q.inStride[0],
      nky: q.rows.n, ky0: q.rows.k0, kys: q.rows.ks, dy0: q.rows.d0, dys: q.rows.ds, kx0: q.cols.k0, kxs: q.cols.ks, dx0: q.cols.d0,
    });
    dispatch({ name, detail: g.detail, code, workgroups: wgs(nb * cb * q.grid[0] * tilesX), buffers: [ar, w.buffer, ...(bias ? [bias.buffer] : []), br], uniforms });
  });
}

/** Forward: `out` = depthwise conv of `x` with `w` (+ bias) over `grid`. */
export function depthwiseForward(x: Tensor, w: Tensor, bias: Tensor | null, out: Tensor, g: Geo, grid: OutputGrid): void {
  stencil('conv2d_depthwise', g, 'forward', x, [g.c, g.h, g.w], w, bias, out, [g.o, g.oh, g.ow], grid);
}

/** Data gradient into `dx`, one stencil per stride phase in `phases`. */
export function depthwiseGradInput(dy: Tensor, w: Tensor, dx: Tensor, g: Geo, phases: OutputGrid[]): void {
  for (const p of phases) stencil('conv2d_depthwise_grad_input', g, 'data', dy, [g.o, g.oh, g.ow], w, null, dx, [g.c, g.h, g.w], p);
}

/** Weight gradient of shape `wShape`: per-part partial sums over images and rows, then one sum. */
export function depthwiseGradWeight(x: Tensor, dy: Tensor, g: Geo, wShape: number[]): Tensor {
  const xPer = g.c * g.h * g.w;
  const yPer = g.o * g.oh * g.ow;
  const kk = g.kh * g.kw;
  const nb = imagesPerChunk(g, [xPer, yPer]);
  const parts = Math.max(1, Math.min(Math.ceil(TARGET_THREADS / (g.o * g.kh)), g.oh * nb));
  const tw = segmentWidth(g.ow);
  const code = dwWeightGradKernel({ tw, sx: g.sw, nkx: g.kw, dxs: g.dw });
  const partial = Tensor.empty([Math.ceil(g.n / nb) * parts, g.o * kk], 'conv2d dWeight partials');
  forImageChunks(g, [xPer, yPer], (chunk, n0, nbc) => {
    const [xb, aOff] = bindImages(x, xPer, n0, nbc);
    const [yb, bOff] = bindImages(dy, yPer, n0, nbc);
    const uniforms = DW_WGRAD_U.pack({
      aOff, bOff, nb: nbc, slot: chunk * parts, c: g.c, h: g.h, w: g.w, o: g.o, oh: g.oh, ow: g.ow, tilesX: Math.ceil(g.ow / tw),
      mult: g.opg, kh: g.kh, kw: g.kw, kk, sy: g.sh, dh: g.dh, top: g.top, left: g.left, parts,
    });
    dispatch({ name: 'conv2d_depthwise_grad_weight', detail: g.detail, code, workgroups: wgs(g.o * g.kh * parts), buffers: [xb, yb, partial.buffer], uniforms });
  });
  return reduceRows(partial, wShape);
}
