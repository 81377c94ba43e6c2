import { arr, type Arr } from './array.js';

/** Per-channel affine parameters and running statistics, all of shape [C]. */
export interface BatchNormParams {
  /** gamma; default all ones (affine=false). */
  weight?: Arr;
  /** beta; default all zeros. */
  bias?: Arr;
  /** Default zeros, as in a freshly built BatchNorm2d. */
  runningMean?: Arr;
  /** Default ones, as in a freshly built BatchNorm2d. */
  runningVar?: Arr;
  /** Default 1e-5. */
  eps?: number;
  /** Weight of the new batch statistic in the running average. Default 0.1. */
  momentum?: number;
}

/** Output of a training-mode batch norm. */
export interface BatchNormTrainResult {
  out: Arr;
  /** Batch mean per channel. */
  mean: Arr;
  /** Biased batch variance per channel (the one used to normalise). */
  var: Arr;
  /** Updated running mean: (1 - momentum) * old + momentum * mean. */
  runningMean: Arr;
  /** Updated running variance, fed with the UNBIASED batch variance as PyTorch does. */
  runningVar: Arr;
}

/** Gradients of batch norm (training mode) w.r.t. input, gamma and beta. */
export interface BatchNormGrads {
  dInput: Arr;
  dWeight: Arr;
  dBias: Arr;
}

function channels(x: Arr, what: string): { n: number; c: number; hw: number } {
  if (x.shape.length !== 4) throw new Error(`${what}: input must be [N, C, H, W], got [${x.shape.join(', ')}]`);
  const [n, c, h, w] = x.shape;
  return { n, c, hw: h * w };
}

function perChannel(p: Arr | undefined, c: number, fill: number, name: string, what: string): Float64Array {
  if (p === undefined) return new Float64Array(c).fill(fill);
  if (p.shape.length !== 1 || p.shape[0] !== c) throw new Error(`${what}: ${name} must be [${c}], got [${p.shape.join(', ')}]`);
  return p.data;
}

/** Flat indices of every element of channel `ch`. */
function channelIndices(n: number, c: number, hw: number, ch: number): number[] {
  const idx: number[] = [];
  for (let b = 0; b < n; b++) for (let k = 0; k < hw; k++) idx.push((b * c + ch) * hw + k);
  return idx;
}

function batchStats(x: Arr, what: string): { mean: Float64Array; varBiased: Float64Array; count: number } {
  const { n, c, hw } = channels(x, what);
  const count = n * hw;
  const mean = new Float64Array(c);
  const varBiased = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const idx = channelIndices(n, c, hw, ch);
    let s = 0;
    for (const i of idx) s += x.data[i];
    mean[ch] = s / count;
    let ss = 0;
    for (const i of idx) ss += (x.data[i] - mean[ch]) ** 2;
    varBiased[ch] = ss / count;
  }
  return { mean, varBiased, count };
}

function normalise(x: Arr, mean: Float64Array, variance: Float64Array, p: BatchNormParams, what: string): Arr {
  const { n, c, hw } = channels(x, what);
  const gamma = perChannel(p.weight, c, 1, 'weight', what);
  const beta = perChannel(p.bias, c, 0, 'bias', what);
  const eps = p.eps ?? 1e-5;
  const out = arr(x.shape);
  for (let ch = 0; ch < c; ch++) {
    const invStd = 1 / Math.sqrt(variance[ch] + eps);
    for (const i of channelIndices(n, c, hw, ch)) out.data[i] = (x.data[i] - mean[ch]) * invStd * gamma[ch] + beta[ch];
  }
  return out;
}

/** BatchNorm2d in training mode: normalise by batch statistics and update the running ones. */
export function batchNorm2dTrain(x: Arr, p: BatchNormParams = {}): BatchNormTrainResult {
  const what = 'batchNorm2dTrain';
  const { c } = channels(x, what);
  const { mean, varBiased, count } = batchStats(x, what);
  if (count < 2) throw new Error(`${what}: need more than 1 value per channel, got input [${x.shape.join(', ')}]`);
  const momentum = p.momentum ?? 0.1;
  const oldMean = perChannel(p.runningMean, c, 0, 'runningMean', what);
  const oldVar = perChannel(p.runningVar, c, 1, 'runningVar', what);
  const runningMean = arr([c]);
  const runningVar = arr([c]);
  for (let ch = 0; ch < c; ch++) {
    runningMean.data[ch] = (1 - momentum) * oldMean[ch] + momentum * mean[ch];
    runningVar.data[ch] = (1 - momentum) * oldVar[ch] + momentum * varBiased[ch] * (count / (count - 1));
  }
  return {
    out: normalise(x, mean, varBiased, p, what),
    mean: arr([c], mean),
    var: arr([c], varBiased),
    runningMean,
    runningVar,
  };
}

/** BatchNorm2d in eval mode: normalise by the running statistics (which are required). */
export function batchNorm2dEval(x: Arr, p: BatchNormParams): Arr {
  const what = 'batchNorm2dEval';
  const { c } = channels(x, what);
  if (p.runningMean === undefined || p.runningVar === undefined) throw new Error(`${what}: runningMean and runningVar are required`);
  const mean = perChannel(p.runningMean, c, 0, 'runningMean', what);
  const variance = perChannel(p.runningVar, c, 1, 'runningVar', what);
  return normalise(x, mean, variance, p, what);
}

/**
 * Backward of training-mode BatchNorm2d by the closed form, per channel with
 * M = N*H*W values, xhat = (x - mean) / sqrt(var + eps):
 *   dBias = Σ dy,  dWeight = Σ dy·xhat,
 *   dx = gamma / (M·sqrt(var + eps)) · (M·dy - dBias - xhat·dWeight).
 */
export function batchNorm2dBackward(x: Arr, dOut: Arr, p: Pick<BatchNormParams, 'weight' | 'eps'> = {}): BatchNormGrads {
  const what = 'batchNorm2dBackward';
  const { n, c, hw } = channels(x, what);
  if (dOut.shape.join() !== x.shape.join()) throw new Error(`${what}: dOut [${dOut.shape.join(', ')}] must match input [${x.shape.join(', ')}]`);
  const gamma = perChannel(p.weight, c, 1, 'weight', what);
  const eps = p.eps ?? 1e-5;
  const { mean, varBiased, count } = batchStats(x, what);
  const dInput = arr(x.shape);
  const dWeight = arr([c]);
  const dBias = arr([c]);
  for (let ch = 0; ch < c; ch++) {
    const invStd = 1 / Math.sqrt(varBiased[ch] + eps);
    const idx = channelIndices(n, c, hw, ch);
    const xhat = (i: number): number => (x.data[i] - mean[ch]) * invStd;
    for (const i of idx) {
      dBias.data[ch] += dOut.data[i];
      dWeight.data[ch] += dOut.data[i] * xhat(i);
    }
    for (const i of idx) {
      dInput.data[i] = ((gamma[ch] * invStd) / count) * (count * dOut.data[i] - dBias.data[ch] - xhat(i) * dWeight.data[ch]);
    }
  }
  return { dInput, dWeight, dBias };
}
