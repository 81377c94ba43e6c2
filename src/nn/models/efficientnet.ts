/**
 * EfficientNet B0–B7 (Tan & Le 2019) built as EfficientNet-PyTorch's `EfficientNet.from_name` builds
 * it: TensorFlow "SAME" padding fixed per layer for the model's image size, Swish, BN momentum 0.01
 * (PyTorch convention) and eps 1e-3, its state-dict names (`_conv_stem`, `_blocks.N._depthwise_conv`,
 * …), so its weights load by key.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { add, mul, sigmoid, silu } from '../../tensor/ops/index.js';
import { Module } from '../module.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2dStaticSamePadding, Dropout, Linear, ModuleList } from '../layers/index.js';
import { adaptiveAvgPool2d, dropConnect } from '../functional/index.js';

/** One stage of the B0 baseline: `r<repeats>_k<kernel>_s<stride><stride>_e<expand>_i<in>_o<out>_se<ratio>`. */
export interface BlockArgs {
  numRepeat: number;
  kernelSize: number;
  stride: number;
  expandRatio: number;
  inputFilters: number;
  outputFilters: number;
  seRatio: number | null;
  idSkip: boolean;
}

/** The B0 stages, in the paper's and the reference implementation's notation. */
export const BLOCK_STRINGS = [
  'r1_k3_s11_e1_i32_o16_se0.25',
  'r2_k3_s22_e6_i16_o24_se0.25',
  'r2_k5_s22_e6_i24_o40_se0.25',
  'r3_k3_s22_e6_i40_o80_se0.25',
  'r3_k5_s11_e6_i80_o112_se0.25',
  'r4_k5_s22_e6_i112_o192_se0.25',
  'r1_k3_s11_e6_i192_o320_se0.25',
];

/** Compound-scaling coefficients per model: [width, depth, resolution, dropout]. */
export const EFFICIENTNET_PARAMS: Record<string, [number, number, number, number]> = {
  'efficientnet-b0': [1.0, 1.0, 224, 0.2],
  'efficientnet-b1': [1.0, 1.1, 240, 0.2],
  'efficientnet-b2': [1.1, 1.2, 260, 0.3],
  'efficientnet-b3': [1.2, 1.4, 300, 0.3],
  'efficientnet-b4': [1.4, 1.8, 380, 0.4],
  'efficientnet-b5': [1.6, 2.2, 456, 0.4],
  'efficientnet-b6': [1.8, 2.6, 528, 0.5],
  'efficientnet-b7': [2.0, 3.1, 600, 0.5],
};

/** Parses a block string such as `r2_k3_s22_e6_i16_o24_se0.25`. */
export function decodeBlockString(s: string): BlockArgs {
  const opts = new Map<string, string>();
  for (const part of s.split('_')) {
    const m = /^([a-z]+)(\d.*)$/.exec(part);
    if (m) opts.set(m[1], m[2]);
  }
  const int = (key: string) => {
    const v = opts.get(key);
    if (v === undefined || !/^\d+$/.test(v)) throw new Error(`block string '${s}': missing or bad '${key}'`);
    return Number(v);
  };
  const strides = opts.get('s') ?? '';
  if (!/^\d$|^(\d)\1$/.test(strides)) throw new Error(`block string '${s}': stride must be one digit or two equal digits, got '${strides}'`);
  return {
    numRepeat: int('r'),
    kernelSize: int('k'),
    stride: Number(strides[0]),
    expandRatio: int('e'),
    inputFilters: int('i'),
    outputFilters: int('o'),
    seRatio: opts.has('se') ? Number(opts.get('se')) : null,
    idSkip: !s.includes('noskip'),
  };
}

/** Channels scaled by the width coefficient, rounded to a multiple of 8 but never down by more than 10%. */
export function roundFilters(filters: number, width: number, divisor = 8): number {
  const scaled = filters * width;
  let rounded = Math.max(divisor, Math.floor(Math.trunc(scaled + divisor / 2) / divisor) * divisor);
  if (rounded < 0.9 * scaled) rounded += divisor;
  return rounded;
}

/** Block repeats scaled by the depth coefficient, rounded up. */
export const roundRepeats = (repeats: number, depth: number) => Math.ceil(depth * repeats);

const outSize = (size: [number, number], stride: number): [number, number] => [Math.ceil(size[0] / stride), Math.ceil(size[1] / stride)];

interface BnParams {
  momentum: number;
  eps: number;
}

/** Mobile inverted bottleneck: 1x1 expand, depthwise k×k (strided), squeeze-excite, 1x1 project, skip. */
export class MBConvBlock extends Module {
  _expand_conv?: Conv2dStaticSamePadding;
  _bn0?: BatchNorm2d;
  _depthwise_conv: Conv2dStaticSamePadding;
  _bn1: BatchNorm2d;
  _se_reduce?: Conv2dStaticSamePadding;
  _se_expand?: Conv2dStaticSamePadding;
  _project_conv: Conv2dStaticSamePadding;
  _bn2: BatchNorm2d;
  /** Drop-connect probability of the residual branch in training (0 disables it). */
  dropConnectRate = 0;

  /** `imageSize`: the spatial size of this block's input, from which the static padding is computed. */
  constructor(readonly args: BlockArgs, bn: BnParams, imageSize: [number, number]) {
    super();
    const inp = args.inputFilters;
    const oup = inp * args.expandRatio;
    if (args.expandRatio !== 1) {
      this._expand_conv = new Conv2dStaticSamePadding(inp, oup, 1, { bias: false, imageSize });
      this._bn0 = new BatchNorm2d(oup, bn);
    }
    this._depthwise_conv = new Conv2dStaticSamePadding(oup, oup, args.kernelSize, { stride: args.stride, groups: oup, bias: false, imageSize });
    this._bn1 = new BatchNorm2d(oup, bn);
    const after = outSize(imageSize, args.stride);
    if (args.seRatio !== null && args.seRatio > 0 && args.seRatio <= 1) {
      // The squeeze width follows the block's input channels, not the expanded ones.
      const squeezed = Math.max(1, Math.trunc(inp * args.seRatio));
      this._se_reduce = new Conv2dStaticSamePadding(oup, squeezed, 1, { imageSize: 1 });
      this._se_expand = new Conv2dStaticSamePadding(squeezed, oup, 1, { imageSize: 1 });
    }
    this._project_conv = new Conv2dStaticSamePadding(oup, args.outputFilters, 1, { bias: false, imageSize: after });
    this._bn2 = new BatchNorm2d(args.outputFilters, bn);
  }

  forward(inputs: Tensor): Tensor {
    let x = inputs;
    if (this._expand_conv && this._bn0) x = silu(this._bn0.forward(this._expand_conv.forward(x)));
    x = silu(this._bn1.forward(this._depthwise_conv.forward(x)));
    if (this._se_reduce && this._se_expand) {
      const s = this._se_expand.forward(silu(this._se_reduce.forward(adaptiveAvgPool2d(x, 1))));
      x = mul(sigmoid(s), x);
    }
    x = this._bn2.forward(this._project_conv.forward(x));
    const a = this.args;
    if (a.idSkip && a.stride === 1 && a.inputFilters === a.outputFilters) {
      if (this.dropConnectRate > 0) x = dropConnect(x, this.dropConnectRate, this.training);
      x = add(x, inputs);
    }
    return x;
  }
}

export interface EfficientNetOptions {
  /** Outputs of `_fc` (default 1000). */
  numClasses?: number;
  /** Input size the static padding is computed for (default: the model's resolution, e.g. 224 for B0). */
  imageSize?: number | [number, number];
  /** Dropout before `_fc` (default: the model's, 0.2 for B0 up to 0.5 for B7). */
  dropoutRate?: number;
  /** Drop-connect rate, scaled by block index / number of blocks (default 0.2). */
  dropConnectRate?: number;
}

export class EfficientNet extends Module {
  _conv_stem: Conv2dStaticSamePadding;
  _bn0: BatchNorm2d;
  _blocks: ModuleList<MBConvBlock>;
  _conv_head: Conv2dStaticSamePadding;
  _bn1: BatchNorm2d;
  _avg_pooling = new AdaptiveAvgPool2d(1);
  _dropout: Dropout;
  _fc: Linear;

  /** Builds the network from its stages and coefficients; `fromName` supplies them for B0–B7. */
  constructor(blocksArgs: BlockArgs[], p: { width: number; depth: number; imageSize: [number, number]; dropoutRate: number; dropConnectRate: number; numClasses: number }) {
    super();
    const bn: BnParams = { momentum: 1 - 0.99, eps: 1e-3 };
    let size = p.imageSize;
    const stemOut = roundFilters(32, p.width);
    this._conv_stem = new Conv2dStaticSamePadding(3, stemOut, 3, { stride: 2, bias: false, imageSize: size });
    this._bn0 = new BatchNorm2d(stemOut, bn);
    size = outSize(size, 2);

    const blocks: MBConvBlock[] = [];
    let last = stemOut;
    for (const stage of blocksArgs) {
      const args: BlockArgs = {
        ...stage,
        inputFilters: roundFilters(stage.inputFilters, p.width),
        outputFilters: roundFilters(stage.outputFilters, p.width),
        numRepeat: roundRepeats(stage.numRepeat, p.depth),
      };
      blocks.push(new MBConvBlock(args, bn, size));
      size = outSize(size, args.stride);
      const rest: BlockArgs = { ...args, inputFilters: args.outputFilters, stride: 1 };
      for (let i = 1; i < args.numRepeat; i++) blocks.push(new MBConvBlock(rest, bn, size));
      last = args.outputFilters;
    }
    blocks.forEach((b, i) => (b.dropConnectRate = (p.dropConnectRate * i) / blocks.length));
    this._blocks = new ModuleList(blocks);

    const headOut = roundFilters(1280, p.width);
    this._conv_head = new Conv2dStaticSamePadding(last, headOut, 1, { bias: false, imageSize: size });
    this._bn1 = new BatchNorm2d(headOut, bn);
    this._dropout = new Dropout(p.dropoutRate);
    this._fc = new Linear(headOut, p.numClasses);
  }

  /** `EfficientNet.fromName('efficientnet-b0' … 'efficientnet-b7', opts)`, as `EfficientNet.from_name`. */
  static fromName(name: string, opts: EfficientNetOptions = {}): EfficientNet {
    const coeffs = EFFICIENTNET_PARAMS[name];
    if (!coeffs) throw new Error(`EfficientNet.fromName: unknown model '${name}' (expected one of ${Object.keys(EFFICIENTNET_PARAMS).join(', ')})`);
    const [width, depth, resolution, dropout] = coeffs;
    const s = opts.imageSize ?? resolution;
    return new EfficientNet(BLOCK_STRINGS.map(decodeBlockString), {
      width,
      depth,
      imageSize: typeof s === 'number' ? [s, s] : s,
      dropoutRate: opts.dropoutRate ?? dropout,
      dropConnectRate: opts.dropConnectRate ?? 0.2,
      numClasses: opts.numClasses ?? 1000,
    });
  }

  /** The stem, the blocks and the head conv: features `[N, round(1280·width), H/32, W/32]`. */
  extractFeatures(inputs: Tensor): Tensor {
    let x = silu(this._bn0.forward(this._conv_stem.forward(inputs)));
    for (const block of this._blocks) x = block.forward(x);
    return silu(this._bn1.forward(this._conv_head.forward(x)));
  }

  forward(inputs: Tensor): Tensor {
    const pooled = this._avg_pooling.forward(this.extractFeatures(inputs)).flatten(1);
    return this._fc.forward(this._dropout.forward(pooled));
  }
}
