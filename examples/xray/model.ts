/**
 * The networks the example trains, by name, each with its classifier replaced for the label count
 * as in the seed (`model._fc = nn.Linear(num_ftrs, len(labels))`), and split into a spatial feature
 * extractor and a head so that Grad-CAM can look at the last feature map.
 */
import { type Tensor, nn } from '@lib/nn';

/** A classifier whose forward is `head(features(x))`; `features` keeps the spatial map. */
export interface XrayModel {
  name: string;
  module: nn.Module;
  features(x: Tensor): Tensor;
  head(features: Tensor): Tensor;
}

export const MODEL_NAMES = [
  'small-cnn',
  'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
  ...Array.from({ length: 8 }, (_, i) => `efficientnet-b${i}`),
];

/** conv 3x3 → BN → ReLU, stride 1 or 2. */
class ConvBnRelu extends nn.Module {
  conv: nn.Conv2d;
  bn: nn.BatchNorm2d;
  constructor(cin: number, cout: number, stride: number) {
    super();
    this.conv = new nn.Conv2d(cin, cout, 3, { stride, padding: 1, bias: false });
    this.bn = new nn.BatchNorm2d(cout);
  }
  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv.forward(x)).relu();
  }
}

/** A small CNN that trains in minutes on a CPU driver: four conv stages, global average pool, linear. */
export class SmallCnn extends nn.Module {
  features = new nn.Sequential(new ConvBnRelu(3, 16, 2), new ConvBnRelu(16, 32, 2), new ConvBnRelu(32, 64, 2), new ConvBnRelu(64, 96, 2));
  pool = new nn.AdaptiveAvgPool2d(1);
  dropout = new nn.Dropout(0.2);
  fc: nn.Linear;
  constructor(numClasses: number) {
    super();
    this.fc = new nn.Linear(96, numClasses);
  }
  classify(f: Tensor): Tensor {
    return this.fc.forward(this.dropout.forward(this.pool.forward(f).flatten(1)));
  }
  forward(x: Tensor): Tensor {
    return this.classify(this.features.forward(x));
  }
}

/** Builds `name` for `numClasses` outputs at `imageSize` (EfficientNet's static padding depends on it). */
export function buildModel(name: string, numClasses: number, imageSize: number): XrayModel {
  if (name === 'small-cnn') {
    const m = new SmallCnn(numClasses);
    return { name, module: m, features: (x) => m.features.forward(x), head: (f) => m.classify(f) };
  }
  const resnets: Record<string, () => nn.ResNet> = {
    resnet18: () => nn.resnet18(), resnet34: () => nn.resnet34(), resnet50: () => nn.resnet50(),
    resnet101: () => nn.resnet101(), resnet152: () => nn.resnet152(),
  };
  if (resnets[name]) {
    const m = resnets[name]();
    m.fc.dispose();
    m.fc = new nn.Linear(m.fc.inFeatures, numClasses);
    const features = (x: Tensor) => {
      let y = m.maxpool.forward(m.relu.forward(m.bn1.forward(m.conv1.forward(x))));
      for (const layer of [m.layer1, m.layer2, m.layer3, m.layer4]) y = layer.forward(y);
      return y;
    };
    return { name, module: m, features, head: (f) => m.fc.forward(m.avgpool.forward(f).flatten(1)) };
  }
  if (name.startsWith('efficientnet-')) {
    const m = nn.EfficientNet.fromName(name, { imageSize });
    const inFeatures = m._fc.inFeatures;
    m._fc.dispose();
    m._fc = new nn.Linear(inFeatures, numClasses);
    return {
      name,
      module: m,
      features: (x) => m.extractFeatures(x),
      head: (f) => m._fc.forward(m._dropout.forward(m._avg_pooling.forward(f).flatten(1))),
    };
  }
  throw new Error(`unknown model '${name}' (expected one of: ${MODEL_NAMES.join(', ')})`);
}
