/**
 * Weight initialisation (`torch.nn.init`), in place on the GPU and seeded by the global generator
 * (`manualSeed`). Every function returns the tensor it filled.
 */
import type { Tensor } from '../tensor/tensor.js';
import { copyBuffer } from '../tensor/device.js';
import { mapInPlace, rand, randn } from '../tensor/ops/index.js';

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fanIn' | 'fanOut';

/** The recommended gain for a nonlinearity (`torch.nn.init.calculate_gain`); `param` is leaky_relu's slope. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv2d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new Error(`calculateGain: unknown nonlinearity '${nonlinearity as string}'`);
  }
}

/** Fan-in and fan-out of a weight: `[out, in, ...kernel]` gives in·k and out·k (k the kernel size product). */
export function fanInAndFanOut(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new Error(`fan in and fan out need a tensor with at least 2 dimensions, got shape [${t.shape}]`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

function fill(t: Tensor, values: Tensor): Tensor {
  if (t.numel) copyBuffer(values.buffer, 0, t.buffer, 0, t.numel * 4);
  values.dispose();
  return t;
}

/** Uniform values in [a, b). */
export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  return fill(t, rand(t.shape, a, b));
}

/** Normal values with the given mean and standard deviation. */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return fill(t, randn(t.shape, mean, std));
}

/** Every element set to `value`. */
export function constant_(t: Tensor, value: number): Tensor {
  mapInPlace('constant_', t, (_t, v) => v, [value]);
  return t;
}

export const zeros_ = (t: Tensor) => constant_(t, 0);
export const ones_ = (t: Tensor) => constant_(t, 1);

export interface KaimingOptions {
  /** Negative slope of leaky_relu (default 0). */
  a?: number;
  /** Preserve the variance of the forward pass ('fanIn', default) or of the backward pass ('fanOut'). */
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, opts: KaimingOptions): number {
  const { fanIn, fanOut } = fanInAndFanOut(t);
  const fan = (opts.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  if (fan === 0) throw new Error(`kaiming init: tensor of shape [${t.shape}] has a zero fan`);
  return calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0) / Math.sqrt(fan);
}

/** He et al. uniform: U(-bound, bound) with bound = gain·√(3 / fan). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, opts);
  return uniform_(t, -bound, bound);
}

/** He et al. normal: N(0, std²) with std = gain / √fan. */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, opts));
}

/** Glorot uniform: U(-bound, bound) with bound = gain·√(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}

/** Glorot normal: N(0, std²) with std = gain·√(2 / (fanIn + fanOut)). */
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

/**
 * PyTorch's default for Conv and Linear layers (`reset_parameters`): weight from kaiming_uniform
 * with a = √5, i.e. U(±1/√fanIn), and bias from U(±1/√fanIn).
 */
export function defaultInit_(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const { fanIn } = fanInAndFanOut(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}
