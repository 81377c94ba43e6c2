/**
 * Batch normalisation (PyTorch's `F.batch_norm`) on hand-written kernels: a per-channel statistics
 * reduction, a fused normalise+affine pass, and a backward that reduces Σg and Σg·x̂ per channel in
 * one pass over the data and then writes dx in one more.
 */
import { dispatch } from '../../tensor/device.js';
import { noGrad, record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { narrow, reshape } from '../../tensor/ops/shape.js';
import { bindRange, fitsBinding, itemsPerChunk } from '../../tensor/split.js';
import {
  bnAffineKernel, bnGradFinalKernel, bnGradInputKernel, bnGradPartialKernel, bnLayout, bnStatsFinalKernel,
  bnStatsPartialKernel, splitUniforms, type BnLayout,
} from '../../shaders/norm.js';

/** Options of `batchNorm`. */
export interface BatchNormOptions {
  /** Normalise with batch statistics (and update the running ones) instead of the running statistics. */
  training: boolean;
  /** Weight of the batch statistic in the running average. Default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}

const OP = 'batchNorm';

function layoutOf(x: Tensor, what: string): BnLayout {
  if (x.ndim < 2) throw new Error(`${what}: input must be [N, C, ...], got [${x.shape}]`);
  const [n, c] = x.shape;
  return bnLayout(n, c, x.shape.slice(2).reduce((a, b) => a * b, 1));
}

function checkChannelParam(t: Tensor | null, c: number, name: string, x: Tensor): void {
  if (t && (t.ndim !== 1 || t.shape[0] !== c)) {
    throw new Error(`${OP}: ${name} must have shape [${c}] for input [${x.shape}], got [${t.shape}]`);
  }
}

/**
 * An input larger than one binding runs in `groups` chunks of `nb` images, `nb` a divisor of N so
 * that every chunk has the same layout `lc` (one pipeline per kernel); null when the input fits.
 */
interface Split {
  nb: number;
  groups: number;
  lc: BnLayout;
}

function splitOf(x: Tensor, l: BnLayout): Split | null {
  if (fitsBinding(x)) return null;
  let nb = itemsPerChunk(OP, `[${x.shape}]`, l.n, [l.c * l.hw]);
  while (l.n % nb) nb--;
  return { nb, groups: l.n / nb, lc: bnLayout(nb, l.c, l.hw) };
}

/**
 * Records one dispatch per chunk of images: `bufs` lists the bindings in order, tensors of the input's
 * shape (`true`) bound to the chunk's range, the others whole; `slot` gives the chunk's first partial
 * slot and `stride` the slots per channel, for the partial kernels.
 */
function perChunk(
  sp: Split, name: string, detail: string, k: { code: string; workgroups: number }, threads: number, bufs: [Tensor, boolean][], stride = 0,
): void {
  const per = sp.nb * sp.lc.c * sp.lc.hw;
  for (let chunk = 0; chunk < sp.groups; chunk++) {
    const bind = (t: Tensor) => bindRange(t, chunk * per, per);
    const off = bind(bufs[0][0])[1] / sp.lc.vec;
    dispatch({
      name, detail, code: k.code, workgroups: k.workgroups, buffers: bufs.map(([t, big]) => (big ? bind(t)[0] : t.buffer)),
      uniforms: splitUniforms(off, chunk * sp.lc.parts, stride, threads),
    });
  }
}

/**
 * Runs the statistics kernels, writing (mean, biased variance, scale, shift) per channel into a new
 * [C, 4] tensor; with `running`, also updates the running statistics in place.
 */
function batchStatistics(
  x: Tensor, l: BnLayout, weight: Tensor | null, bias: Tensor | null,
  running: [Tensor, Tensor] | null, momentum: number, eps: number,
): Tensor {
  const detail = `[${x.shape}]`;
  const stats = Tensor.empty([l.c, 4], 'batchNorm stats');
  const tail = [weight, bias, ...(running ?? [])].filter((t): t is Tensor => !!t).map((t) => t.buffer);
  const finalOpts = { source: 'batch', hasWeight: !!weight, hasBias: !!bias, updateRunning: !!running, momentum, eps } as const;
  const sp = splitOf(x, l);
  if (sp) {
    const slots = sp.lc.parts * sp.groups;
    const part = Tensor.empty([l.c, slots, 2], 'batchNorm partial stats');
    perChunk(sp, 'batchNorm_stats_partial', detail, bnStatsPartialKernel(sp.lc, true), l.c * sp.lc.parts, [[x, true], [part, false]], slots);
    const kf = bnStatsFinalKernel(sp.lc, finalOpts, sp.groups);
    dispatch({ name: 'batchNorm_stats', detail, code: kf.code, workgroups: kf.workgroups, buffers: [part.buffer, ...tail, stats.buffer] });
    part.dispose();
    return stats;
  }
  const k = bnStatsFinalKernel(l, finalOpts);
  if (l.parts === 1) {
    dispatch({ name: 'batchNorm_stats', detail, code: k.code, workgroups: k.workgroups, buffers: [x.buffer, ...tail, stats.buffer] });
    return stats;
  }
  const part = Tensor.empty([l.c, l.parts, 2], 'batchNorm partial stats');
  const kp = bnStatsPartialKernel(l);
  dispatch({ name: 'batchNorm_stats_partial', detail, code: kp.code, workgroups: kp.workgroups, buffers: [x.buffer, part.buffer] });
  dispatch({ name: 'batchNorm_stats', detail, code: k.code, workgroups: k.workgroups, buffers: [part.buffer, ...tail, stats.buffer] });
  part.dispose();
  return stats;
}

/**
 * Per-channel mean and biased variance of an [N, C, ...] tensor over every dim but C
 * (no autograd). The statistics batch norm normalises with in training mode.
 */
export function batchNormStats(input: Tensor): { mean: Tensor; var: Tensor } {
  const l = layoutOf(input, 'batchNormStats');
  if (l.n * l.hw === 0) throw new Error(`batchNormStats: input [${input.shape}] has no values per channel`);
  return noGrad(() => {
    const stats = batchStatistics(input, l, null, null, null, 0, 0);
    const mean = reshape(narrow(stats, 1, 0, 1), [l.c]);
    const variance = reshape(narrow(stats, 1, 1, 1), [l.c]);
    stats.dispose();
    return { mean, var: variance };
  });
}

/**
 * `F.batch_norm` for an [N, C, ...] input. Training mode normalises with the batch mean and biased
 * variance and, when running statistics are given, updates them in place (no autograd):
 * running = (1 − momentum)·running + momentum·batch, with the unbiased variance for runningVar.
 * Eval mode normalises with the running statistics, which are then required.
 * `weight` (γ) and `bias` (β) are [C] or null (no affine transform).
 */
export function batchNorm(
  input: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  weight: Tensor | null, bias: Tensor | null, opts: BatchNormOptions,
): Tensor {
  const l = layoutOf(input, OP);
  const { training } = opts;
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  if (!(eps > 0)) throw new Error(`${OP}: eps must be positive, got ${eps}`);
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`${OP}: momentum must be in [0, 1], got ${momentum}`);
  checkChannelParam(runningMean, l.c, 'runningMean', input);
  checkChannelParam(runningVar, l.c, 'runningVar', input);
  checkChannelParam(weight, l.c, 'weight', input);
  checkChannelParam(bias, l.c, 'bias', input);
  if (!runningMean !== !runningVar) throw new Error(`${OP}: give both runningMean and runningVar or neither`);
  if (runningMean?.requiresGrad || runningVar?.requiresGrad) throw new Error(`${OP}: running statistics must not require grad`);
  if (training && l.n * l.hw < 2) {
    throw new Error(`${OP}: expected more than 1 value per channel when training, got input [${input.shape}]`);
  }
  if (!training && !runningMean) throw new Error(`${OP}: eval mode needs runningMean and runningVar`);
  const detail = `[${input.shape}]`;
  let stats: Tensor;
  if (training) {
    stats = batchStatistics(input, l, weight, bias, runningMean ? [runningMean, runningVar!] : null, momentum, eps);
  } else {
    stats = Tensor.empty([l.c, 4], 'batchNorm stats');
    const k = bnStatsFinalKernel(l, { source: 'running', hasWeight: !!weight, hasBias: !!bias, updateRunning: false, momentum, eps });
    const params = [weight, bias].filter((t): t is Tensor => !!t).map((t) => t.buffer);
    dispatch({ name: 'batchNorm_coef', detail, code: k.code, workgroups: k.workgroups, buffers: [...params, runningMean!.buffer, runningVar!.buffer, stats.buffer] });
  }
  const out = Tensor.empty(input.shape, OP);
  const sp = out.numel ? splitOf(input, l) : null;
  if (sp) {
    perChunk(sp, OP, detail, bnAffineKernel(sp.lc, true), (sp.nb * l.c * l.hw) / l.vec, [[input, true], [stats, false], [out, true]]);
  } else if (out.numel) {
    const k = bnAffineKernel(l);
    dispatch({ name: OP, detail, code: k.code, workgroups: k.workgroups, buffers: [input.buffer, stats.buffer, out.buffer] });
  }
  const inputs = [input, weight, bias].filter((t): t is Tensor => !!t);
  record(OP, inputs, out, (g) => {
    const [dx, dw, db] = batchNormBackward(g, input, stats, l, weight, training, eps, [input.requiresGrad, !!weight?.requiresGrad, !!bias?.requiresGrad]);
    return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
  });
  if (!out.gradFn) stats.dispose();
  return out;
}

/** dx, dγ, dβ (null where not wanted) from the saved per-channel statistics. */
function batchNormBackward(
  g: Tensor, x: Tensor, stats: Tensor, l: BnLayout, weight: Tensor | null, training: boolean, eps: number,
  [wantX, wantW, wantB]: boolean[],
): (Tensor | null)[] {
  const detail = `[${x.shape}]`;
  const dW = wantW ? Tensor.empty([l.c], 'batchNorm dWeight') : null;
  const dB = wantB ? Tensor.empty([l.c], 'batchNorm dBias') : null;
  const dx = wantX ? Tensor.empty(x.shape, 'batchNorm dx') : null;
  const wantCoef = training && wantX;
  const sp = x.numel ? splitOf(x, l) : null;
  const elems = sp ? (sp.nb * l.c * l.hw) / l.vec : 0;
  if (wantCoef || wantW || wantB) {
    const finalOpts = { training, hasWeight: !!weight, wantWeight: wantW, wantBias: wantB, wantCoef, eps };
    const coef = wantCoef ? Tensor.empty([l.c, 4], 'batchNorm dx coefficients') : null;
    const tail = [
      stats, ...(wantCoef && weight ? [weight] : []), ...[dW, dB, coef].filter((t): t is Tensor => !!t),
    ].map((t) => t.buffer);
    if (sp) {
      const slots = sp.lc.parts * sp.groups;
      const part = Tensor.empty([l.c, slots, 2], 'batchNorm partial grad sums');
      perChunk(sp, 'batchNorm_grad_partial', detail, bnGradPartialKernel(sp.lc, true), l.c * sp.lc.parts, [[g, true], [x, true], [stats, false], [part, false]], slots);
      const k = bnGradFinalKernel(sp.lc, finalOpts, sp.groups);
      dispatch({ name: 'batchNorm_grad_sums', detail, code: k.code, workgroups: k.workgroups, buffers: [part.buffer, ...tail] });
      part.dispose();
    } else if (l.parts === 1) {
      const k = bnGradFinalKernel(l, finalOpts);
      dispatch({ name: 'batchNorm_grad_sums', detail, code: k.code, workgroups: k.workgroups, buffers: [g.buffer, x.buffer, ...tail] });
    } else {
      const k = bnGradFinalKernel(l, finalOpts);
      const part = Tensor.empty([l.c, l.parts, 2], 'batchNorm partial grad sums');
      const kp = bnGradPartialKernel(l);
      dispatch({ name: 'batchNorm_grad_partial', detail, code: kp.code, workgroups: kp.workgroups, buffers: [g.buffer, x.buffer, stats.buffer, part.buffer] });
      dispatch({ name: 'batchNorm_grad_sums', detail, code: k.code, workgroups: k.workgroups, buffers: [part.buffer, ...tail] });
      part.dispose();
    }
    if (coef && dx && sp) {
      perChunk(sp, 'batchNorm_grad_input', detail, bnGradInputKernel(sp.lc, true, true), elems, [[g, true], [x, true], [coef, false], [dx, true]]);
    } else if (coef && dx && dx.numel) {
      const kx = bnGradInputKernel(l, true);
      dispatch({ name: 'batchNorm_grad_input', detail, code: kx.code, workgroups: kx.workgroups, buffers: [g.buffer, x.buffer, coef.buffer, dx.buffer] });
    }
    coef?.dispose();
  }
  if (dx && !training && sp) {
    perChunk(sp, 'batchNorm_grad_input', detail, bnGradInputKernel(sp.lc, false, true), elems, [[g, true], [stats, false], [dx, true]]);
  } else if (dx && !training && dx.numel) {
    const kx = bnGradInputKernel(l, false);
    dispatch({ name: 'batchNorm_grad_input', detail, code: kx.code, workgroups: kx.workgroups, buffers: [g.buffer, stats.buffer, dx.buffer] });
  }
  return [dx, dW, dB];
}

