/**
 * Depthwise convolution (groups = input channels, any channel multiplier): the row-sweeping stencil
 * of shaders/depthwise.ts for the forward pass and the data gradient, and a sweep into partial sums
 * for the weight gradient. Called by conv2d, which checks the operands.
 */
import { dispatch } from '../../tensor/device.js';
import { Tensor } from '../../tensor/tensor.js';
import { DW_WGRAD_U, STENCIL_U, dwWeightGradKernel, segmentWidth, stencilKernel } from '../../shaders/depthwise.js';
import { TARGET_THREADS, bindImages, forImageChunks, imagesPerChunk, reduceRows, wgs, type Geo, type OutputGrid, type Progression } from './conv-geometry.js';

/** The same taps with a non-negative input spacing (a negative one walks the kernel backwards). */
function ascending(p: Progression): Progression {
  if (p.n < 2) return { ...p, ds: 0 };
  if (p.ds >= 0) return p;
  return { n: p.n, k0: p.k0 + (p.n - 1) * p.ks, ks: -p.ks, d0: p.d0 + (p.n - 1) * p.ds, ds: -p.ds };
}

/** The column phase of vec4 loads of rows `width` wide from element `offset`, first column `x0` (mod 4); null where rows are not vec4-aligned. */
const vecPhase = (width: number, offset: number, x0: number) => (width % 4 === 0 && offset % 4 === 0 ? ((x0 % 4) + 4) % 4 : null);

/** Strips of rows per sweep: enough threads to occupy lavapipe's workers, strips of at least 8 rows. */
function strips(rows: number, threadsPerStrip: number): { strips: number; th: number } {
  const want = Math.min(Math.ceil(rows / 8), Math.max(1, Math.ceil(TARGET_THREADS / threadsPerStrip)));
  const th = Math.ceil(rows / want);
  return { strips: Math.ceil(rows / th), th };
}

/** Runs the depthwise stencil over chunks of images (A: ca channels on ha×wa, B: cb on hb×wb). */
function stencil(
  name: string, g: Geo, mode: 'forward' | 'data', a: Tensor, ab: [number, number, number], w: Tensor, bias: Tensor | null, b: Tensor, bb: [number, number, number],
  q: OutputGrid,
): void {
  const [ca, ha, wa] = ab;
  const [cb, hb, wb] = bb;
  const rows = ascending(q.rows);
  const cols = ascending(q.cols);
  const tw = segmentWidth(q.grid[1]);
  const tilesX = Math.ceil(q.grid[1] / tw);
  forImageChunks(g, [ca * ha * wa, cb * hb * wb], (_c, n0, nb) => {
    const [ar, aOff] = bindImages(a, ca * ha * wa, n0, nb);
    const [br, bOff] = bindImages(b, cb * hb * wb, n0, nb);
    const code = stencilKernel({
      tw, sy: q.inStride[0], sx: q.inStride[1], nky: rows.n, dys: rows.ds, nkx: cols.n, dxs: cols.ds,
      mode, accumulate: mode === 'data' && g.opg > 1, bias: !!bias,
      inPhase: vecPhase(wa, aOff, cols.d0),
      vecOut: q.step[1] === 1 && wb % 4 === 0 && q.start[1] % 4 === 0 && q.grid[1] % 4 === 0 && bOff % 4 === 0,
    });
    const s = strips(q.grid[0], nb * cb * tilesX);
    const uniforms = STENCIL_U.pack({
      aOff, bOff, nb, ca, ha, wa, cb, hwb: hb * wb, wb, gh: q.grid[0], gw: q.grid[1], tilesX, strips: s.strips, th: s.th,
      mult: g.opg, kk: g.kh * g.kw, kw: g.kw, oy0: q.start[0], ox0: q.start[1], osy: q.step[0], osx: q.step[1],
      ky0: rows.k0, kys: rows.ks, dy0: rows.d0, kx0: cols.k0, kxs: cols.ks, dx0: cols.d0,
    });
    dispatch({ name, detail: g.detail, code, workgroups: wgs(nb * cb * s.strips * tilesX), buffers: [ar, w.buffer, ...(bias ? [bias.buffer] : []), br], uniforms });
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

/** Weight gradient of shape `wShape`: partial sums per (image, strip, column tile), then one sum. */
export function depthwiseGradWeight(x: Tensor, dy: Tensor, g: Geo, wShape: number[]): Tensor {
  const xPer = g.c * g.h * g.w;
  const yPer = g.o * g.oh * g.ow;
  const kk = g.kh * g.kw;
  const tw = segmentWidth(g.ow);
  const tilesX = Math.ceil(g.ow / tw);
  const s = strips(g.oh, imagesPerChunk(g, [xPer, yPer]) * g.o * tilesX);
  const partial = Tensor.empty([g.n * s.strips * tilesX, g.o * kk], 'conv2d dWeight partials');
  forImageChunks(g, [xPer, yPer], (_c, n0, nb) => {
    const [xb, aOff] = bindImages(x, xPer, n0, nb);
    const [yb, bOff] = bindImages(dy, yPer, n0, nb);
    const code = dwWeightGradKernel({
      tw, sy: g.sh, sx: g.sw, nky: g.kh, dys: g.kh > 1 ? g.dh : 0, nkx: g.kw, dxs: g.kw > 1 ? g.dw : 0,
      inPhase: vecPhase(g.w, aOff, -g.left), vecDy: g.ow % 4 === 0 && bOff % 4 === 0,
    });
    const uniforms = DW_WGRAD_U.pack({
      aOff, bOff, nb, slot: n0, c: g.c, h: g.h, w: g.w, o: g.o, oh: g.oh, ow: g.ow, tilesX, strips: s.strips, th: s.th,
      mult: g.opg, kk, top: g.top, left: g.left,
    });
    dispatch({ name: 'conv2d_depthwise_grad_weight', detail: g.detail, code, workgroups: wgs(nb * g.o * s.strips * tilesX), buffers: [xb, yb, partial.buffer], uniforms });
  });
  return reduceRows(partial, wShape);
}
