/** Convolution layers: `Conv2d` (PyTorch) and `Conv2dStaticSamePadding` (TensorFlow "SAME" for a fixed image size). */
import type { Tensor } from '../../tensor/tensor.js';
import { Module, emptyParameter } from '../module.js';
import { defaultInit_ } from '../init.js';
import { conv2d, samePadding, type Conv2dOptions, type Conv2dPadding } from '../functional/index.js';

/** One size for both spatial dims, or [height, width]. */
export type Pair = number | [number, number];

/** `functional.conv2d`'s options (padding: int, [h, w], [top, bottom, left, right], 'same' or 'valid') and `bias`. */
export interface Conv2dLayerOptions extends Conv2dOptions {
  /** Whether the layer has a learnable bias (default true). */
  bias?: boolean;
}

const pair = (what: string, v: Pair): [number, number] => {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= 1)) throw new Error(`Conv2d: ${what} must be positive integers, got ${JSON.stringify(v)}`);
  return p;
};

/** 2-D convolution over NCHW input; weight `[out, in/groups, kh, kw]`, bias `[out]`, PyTorch's default init. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: Conv2dPadding;
  readonly dilation: [number, number];
  readonly groups: number;
  weight: Tensor;
  bias: Tensor | null;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dLayerOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    if (![inChannels, outChannels, groups].every((x) => Number.isInteger(x) && x >= 1)) {
      throw new Error(`Conv2d: channels and groups must be positive integers (in=${inChannels}, out=${outChannels}, groups=${groups})`);
    }
    if (inChannels % groups || outChannels % groups) {
      throw new Error(`Conv2d: in (${inChannels}) and out (${outChannels}) channels must both be divisible by groups (${groups})`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair('kernelSize', kernelSize);
    this.stride = pair('stride', opts.stride ?? 1);
    this.dilation = pair('dilation', opts.dilation ?? 1);
    this.groups = groups;
    this.padding = opts.padding ?? 0;
    if (this.padding === 'same' && (this.stride[0] > 1 || this.stride[1] > 1)) {
      throw new Error(`Conv2d: padding 'same' is not supported for strided convolutions (stride [${this.stride}])`);
    }
    const [kh, kw] = this.kernelSize;
    this.weight = emptyParameter([outChannels, inChannels / groups, kh, kw]);
    this.bias = (opts.bias ?? true) ? emptyParameter([outChannels]) : null;
    defaultInit_(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
      throw new Error(`Conv2d(${this.inChannels}, ${this.outChannels}): expected input [N, ${this.inChannels}, H, W], got [${x.shape}]`);
    }
    return conv2d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups,
    });
  }
}

export interface Conv2dStaticSameOptions extends Omit<Conv2dLayerOptions, 'padding'> {
  /** The input's spatial size (int or [h, w]) from which the fixed padding is computed. */
  imageSize: Pair;
}

/**
 * A convolution with TensorFlow's "SAME" padding computed once from a known input size, as
 * EfficientNet-PyTorch's `Conv2dStaticSamePadding` does (extra pixel, if any, at the bottom / right).
 */
export class Conv2dStaticSamePadding extends Conv2d {
  readonly imageSize: [number, number];

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dStaticSameOptions) {
    const [ih, iw] = pair('imageSize', opts.imageSize);
    const k = pair('kernelSize', kernelSize);
    const s = pair('stride', opts.stride ?? 1);
    const d = pair('dilation', opts.dilation ?? 1);
    super(inChannels, outChannels, kernelSize, { ...opts, padding: samePadding(ih, iw, k, s, d) });
    this.imageSize = [ih, iw];
  }
}
