/**
 * ResNet (He et al. 2015) exactly as torchvision builds it (v1.5: the stride of a bottleneck block
 * sits on its 3x3 conv), with torchvision's state-dict names, so its weights load by key.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { add, relu } from '../../tensor/ops/index.js';
import { Module } from '../module.js';
import { kaimingNormal_, ones_, zeros_ } from '../init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU, Sequential } from '../layers/index.js';

const conv3x3 = (inPlanes: number, outPlanes: number, stride = 1) => new Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false });
const conv1x1 = (inPlanes: number, outPlanes: number, stride = 1) => new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });

/** Two 3x3 convs with a shortcut (ResNet-18/34). */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Module | null;

  constructor(inPlanes: number, planes: number, stride = 1, downsample: Module | null = null) {
    super();
    this.conv1 = conv3x3(inPlanes, planes, stride);
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes);
    this.bn2 = new BatchNorm2d(planes);
    this.downsample = downsample;
  }

  forward(x: Tensor): Tensor {
    let out = relu(this.bn1.forward(this.conv1.forward(x)));
    out = this.bn2.forward(this.conv2.forward(out));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return relu(add(out, identity));
  }

  /** The BN whose weight `zeroInitResidual` zeroes (so the block starts as the identity). */
  lastBn(): BatchNorm2d {
    return this.bn2;
  }
}

/** 1x1 reduce, 3x3 (strided), 1x1 expand ×4, with a shortcut (ResNet-50/101/152). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  relu = new ReLU();
  downsample: Module | null;

  constructor(inPlanes: number, planes: number, stride = 1, downsample: Module | null = null) {
    super();
    this.conv1 = conv1x1(inPlanes, planes);
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes, stride);
    this.bn2 = new BatchNorm2d(planes);
    this.conv3 = conv1x1(planes, planes * Bottleneck.expansion);
    this.bn3 = new BatchNorm2d(planes * Bottleneck.expansion);
    this.downsample = downsample;
  }

  forward(x: Tensor): Tensor {
    let out = relu(this.bn1.forward(this.conv1.forward(x)));
    out = relu(this.bn2.forward(this.conv2.forward(out)));
    out = this.bn3.forward(this.conv3.forward(out));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return relu(add(out, identity));
  }

  lastBn(): BatchNorm2d {
    return this.bn3;
  }
}

type BlockClass = (typeof BasicBlock | typeof Bottleneck);

export interface ResNetOptions {
  /** Outputs of the final fully connected layer (default 1000). */
  numClasses?: number;
  /** Zero the last BN weight of every block, so each residual branch starts at zero (default false). */
  zeroInitResidual?: boolean;
}

export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  maxpool = new MaxPool2d(3, { stride: 2, padding: 1 });
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  avgpool = new AdaptiveAvgPool2d(1);
  fc: Linear;
  private inPlanes = 64;

  /** `layers`: blocks per stage, e.g. [3, 4, 6, 3] for ResNet-50. */
  constructor(block: BlockClass, layers: [number, number, number, number], opts: ResNetOptions = {}) {
    super();
    const numClasses = opts.numClasses ?? 1000;
    this.conv1 = new Conv2d(3, this.inPlanes, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(this.inPlanes);
    this.layer1 = this.makeLayer(block, 64, layers[0]);
    this.layer2 = this.makeLayer(block, 128, layers[1], 2);
    this.layer3 = this.makeLayer(block, 256, layers[2], 2);
    this.layer4 = this.makeLayer(block, 512, layers[3], 2);
    this.fc = new Linear(512 * block.expansion, numClasses);

    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fanOut', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d) {
        ones_(m.weight!);
        zeros_(m.bias!);
      }
    }
    if (opts.zeroInitResidual) {
      for (const m of this.modules()) if (m instanceof BasicBlock || m instanceof Bottleneck) zeros_(m.lastBn().weight!);
    }
  }

  private makeLayer(block: BlockClass, planes: number, blocks: number, stride = 1): Sequential {
    const outPlanes = planes * block.expansion;
    const downsample = stride !== 1 || this.inPlanes !== outPlanes
      ? new Sequential(conv1x1(this.inPlanes, outPlanes, stride), new BatchNorm2d(outPlanes))
      : null;
    const layers: Module[] = [new block(this.inPlanes, planes, stride, downsample)];
    this.inPlanes = outPlanes;
    for (let i = 1; i < blocks; i++) layers.push(new block(this.inPlanes, planes));
    return new Sequential(...layers);
  }

  /** Everything up to the pooled, flattened features `[N, 512·expansion]`. */
  features(x: Tensor): Tensor {
    let y = this.maxpool.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(x))));
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) y = layer.forward(y);
    return this.avgpool.forward(y).flatten(1);
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.features(x));
  }
}

export const resnet18 = (opts?: ResNetOptions) => new ResNet(BasicBlock, [2, 2, 2, 2], opts);
export const resnet34 = (opts?: ResNetOptions) => new ResNet(BasicBlock, [3, 4, 6, 3], opts);
export const resnet50 = (opts?: ResNetOptions) => new ResNet(Bottleneck, [3, 4, 6, 3], opts);
export const resnet101 = (opts?: ResNetOptions) => new ResNet(Bottleneck, [3, 4, 23, 3], opts);
export const resnet152 = (opts?: ResNetOptions) => new ResNet(Bottleneck, [3, 8, 36, 3], opts);
