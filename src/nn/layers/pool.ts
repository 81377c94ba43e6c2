/** Pooling layers over NCHW input. */
import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d, type AvgPool2dOptions, type MaxPool2dOptions } from '../functional/index.js';
import type { Pair } from './conv.js';

/** Max pooling; options as `functional.maxPool2d` (stride defaults to the kernel size). */
export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly opts: MaxPool2dOptions = {}) {
    super();
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.opts);
  }
}

/** Average pooling; options as `functional.avgPool2d` (padded zeros counted by default). */
export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly opts: AvgPool2dOptions = {}) {
    super();
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.opts);
  }
}

/** Average pooling to a fixed output size (1 gives global average pooling). */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}
