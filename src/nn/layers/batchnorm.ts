/** Batch normalisation over the channels of NCHW input. */
import type { Tensor } from '../../tensor/tensor.js';
import { full, mapInPlace, ones, zeros } from '../../tensor/ops/index.js';
import { Module, parameter } from '../module.js';
import { batchNorm } from '../functional/index.js';

export interface BatchNorm2dOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Running-average factor, PyTorch's convention: new = (1 - momentum)·old + momentum·batch (default 0.1). */
  momentum?: number;
  /** Learnable per-channel scale and shift (default true). */
  affine?: boolean;
  /** Keep running statistics for evaluation (default true); without them batch statistics are always used. */
  trackRunningStats?: boolean;
}

/**
 * `BatchNorm2d(numFeatures)`: state-dict keys `weight`, `bias`, `running_mean`, `running_var` and
 * `num_batches_tracked` (a 0-d tensor counting training batches, float32 here, int64 in PyTorch).
 */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  weight: Tensor | null;
  bias: Tensor | null;
  declare runningMean: Tensor | null;
  declare runningVar: Tensor | null;
  declare numBatchesTracked: Tensor | null;

  constructor(numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new Error(`BatchNorm2d: numFeatures must be a positive integer, got ${numFeatures}`);
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    if (!(this.eps > 0)) throw new Error(`BatchNorm2d: eps must be positive, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new Error(`BatchNorm2d: momentum must be in [0, 1], got ${this.momentum}`);
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    this.weight = this.affine ? parameter(ones([numFeatures])) : null;
    this.bias = this.affine ? parameter(zeros([numFeatures])) : null;
    const track = this.trackRunningStats;
    this.registerBuffer('runningMean', track ? zeros([numFeatures]) : null, { key: 'running_mean' });
    this.registerBuffer('runningVar', track ? ones([numFeatures]) : null, { key: 'running_var' });
    this.registerBuffer('numBatchesTracked', track ? full([], 0) : null, { key: 'num_batches_tracked' });
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.numFeatures) {
      throw new Error(`BatchNorm2d(${this.numFeatures}): expected input [N, ${this.numFeatures}, H, W], got [${x.shape}]`);
    }
    const useRunning = !this.training && this.runningMean !== null;
    if (this.training && this.numBatchesTracked) mapInPlace('num_batches_tracked', this.numBatchesTracked, (t) => `${t} + 1.0`, []);
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, {
      training: !useRunning,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}
