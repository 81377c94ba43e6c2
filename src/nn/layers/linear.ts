/** The fully connected layer. */
import type { Tensor } from '../../tensor/tensor.js';
import { Module, emptyParameter } from '../module.js';
import { defaultInit_ } from '../init.js';
import { linear } from '../functional/index.js';

/** `y = x Wᵀ + b` over the last dimension; weight `[out, in]`, bias `[out]`, PyTorch's default init. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Tensor;
  bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    if (![inFeatures, outFeatures].every((x) => Number.isInteger(x) && x >= 1)) {
      throw new Error(`Linear: features must be positive integers (in=${inFeatures}, out=${outFeatures})`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = emptyParameter([outFeatures, inFeatures]);
    this.bias = (opts.bias ?? true) ? emptyParameter([outFeatures]) : null;
    defaultInit_(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new Error(`Linear(${this.inFeatures}, ${this.outFeatures}): expected input [..., ${this.inFeatures}], got [${x.shape}]`);
    }
    return linear(x, this.weight, this.bias ?? undefined);
  }
}
