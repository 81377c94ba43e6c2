/** Dropout and reshaping layers. */
import type { Tensor } from '../../tensor/tensor.js';
import { flatten } from '../../tensor/ops/index.js';
import { Module } from '../module.js';
import { dropout } from '../functional/index.js';

/** Zeroes each element with probability `p` in training and scales the rest by 1/(1-p); identity in eval. */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout: p must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

/** Flattens dimensions `startDim..endDim` into one (default: all but the batch dimension). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }

  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}
