/**
 * The models of the training benchmarks: ours from src/nn/models, and the same networks built
 * with `tf.layers` by walking our modules (same layers, shapes, padding and parameters), with our
 * initial weights copied over so both start from identical parameters.
 */
import { nn, type Tensor } from '@lib/nn';
import { permuteData } from './harness.js';
import { tf } from './setup.js';

const { relu, adaptiveAvgPool2d } = nn.functional;
type Sym = tf.SymbolicTensor;

/** conv 3x3 32 → BN → ReLU → conv 3x3/2 64 → BN → ReLU → global average pool → linear. */
export class SmallCnn extends nn.Module {
  conv1 = new nn.Conv2d(3, 32, 3, { padding: 1, bias: false });
  bn1 = new nn.BatchNorm2d(32);
  conv2 = new nn.Conv2d(32, 64, 3, { stride: 2, padding: 1, bias: false });
  bn2 = new nn.BatchNorm2d(64);
  fc: nn.Linear;

  constructor(numClasses: number) {
    super();
    this.fc = new nn.Linear(64, numClasses);
  }

  forward(x: Tensor): Tensor {
    const h = relu(this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x))))));
    return this.fc.forward(adaptiveAvgPool2d(h, 1).flatten(1));
  }
}

/** [top, bottom, left, right] of a Conv2d's padding. */
function pads(p: nn.Conv2d['padding']): [number, number, number, number] {
  if (typeof p === 'number') return [p, p, p, p];
  if (p === 'valid') return [0, 0, 0, 0];
  if (p === 'same') throw new Error('bench: stride-1 "same" convolutions are not mirrored');
  return p.length === 2 ? [p[0], p[0], p[1], p[1]] : [p[0], p[1], p[2], p[3]];
}

/** TensorFlow's 'same' padding (before, after) for one spatial dim. */
function tfSame(size: number, k: number, s: number): [number, number] {
  const total = Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Builds the tfjs graph layer by layer from our modules and remembers which layer mirrors which module. */
class Mirror {
  readonly pairs: [tf.layers.Layer, nn.Conv2d | nn.BatchNorm2d | nn.Linear][] = [];

  conv(x: Sym, m: nn.Conv2d): Sym {
    const [h, w] = [x.shape[1] as number, x.shape[2] as number];
    const [t, b, l, r] = pads(m.padding);
    const [sh, sw] = [tfSame(h, m.kernelSize[0], m.stride[0]), tfSame(w, m.kernelSize[1], m.stride[1])];
    // TF's 'same' where it pads exactly like ours; explicit zero padding otherwise (PyTorch's symmetric padding at stride 2).
    const same = sh[0] === t && sh[1] === b && sw[0] === l && sw[1] === r;
    let y = x;
    if (!same && t + b + l + r > 0) y = tf.layers.zeroPadding2d({ padding: [[t, b], [l, r]] }).apply(y) as Sym;
    const depthwise = m.groups > 1 && m.groups === m.inChannels && m.outChannels === m.inChannels;
    if (m.groups > 1 && !depthwise) throw new Error(`bench: grouped conv with ${m.groups} groups has no tf.layers mirror`);
    const common = { kernelSize: m.kernelSize, strides: m.stride, padding: same ? 'same' as const : 'valid' as const, useBias: m.bias !== null };
    const layer = depthwise ? tf.layers.depthwiseConv2d({ ...common, depthMultiplier: 1 }) : tf.layers.conv2d({ ...common, filters: m.outChannels });
    this.pairs.push([layer, m]);
    return layer.apply(y) as Sym;
  }

  bn(x: Sym, m: nn.BatchNorm2d): Sym {
    const layer = tf.layers.batchNormalization({ axis: -1, momentum: 1 - m.momentum, epsilon: m.eps });
    this.pairs.push([layer, m]);
    return layer.apply(x) as Sym;
  }

  dense(x: Sym, m: nn.Linear): Sym {
    const layer = tf.layers.dense({ units: m.weight.shape[0], useBias: m.bias !== null });
    this.pairs.push([layer, m]);
    return layer.apply(x) as Sym;
  }

  /** Copies our parameters and running statistics into the tfjs layers; returns the parameter elements copied. */
  async copyWeights(): Promise<number> {
    let copied = 0;
    const host = async (t: Tensor | null, perm?: number[]) => {
      if (!t) throw new Error('bench: missing tensor while copying weights');
      const d = await t.data();
      const shape = perm ? perm.map((p) => t.shape[p]) : t.shape;
      return tf.tensor(perm ? permuteData(d, t.shape, perm) : d, shape);
    };
    for (const [layer, m] of this.pairs) {
      let ws: tf.Tensor[];
      if (m instanceof nn.BatchNorm2d) {
        ws = [await host(m.weight), await host(m.bias), await host(m.runningMean), await host(m.runningVar)];
        copied += 2 * m.weight!.numel;
      } else {
        const depthwise = m instanceof nn.Conv2d && m.groups > 1;
        const perm = m instanceof nn.Linear ? [1, 0] : depthwise ? [2, 3, 0, 1] : [2, 3, 1, 0];
        ws = [await host(m.weight, perm)];
        if (m.bias) ws.push(await host(m.bias));
        copied += m.weight.numel + (m.bias?.numel ?? 0);
      }
      layer.setWeights(ws);
      ws.forEach((w) => w.dispose());
    }
    return copied;
  }
}

const act = (x: Sym, activation: 'relu' | 'swish' | 'sigmoid') => tf.layers.activation({ activation }).apply(x) as Sym;
const add = (a: Sym, b: Sym) => tf.layers.add().apply([a, b]) as Sym;
const gap = (x: Sym) => tf.layers.globalAveragePooling2d({}).apply(x) as Sym;

/** The tfjs twin of one of our models, for NHWC input of `size`x`size`x3. */
export function mirror(model: nn.Module, size: number): { model: tf.LayersModel; copyWeights: () => Promise<number> } {
  const mr = new Mirror();
  const input = tf.input({ shape: [size, size, 3] });
  let x: Sym;
  if (model instanceof SmallCnn) {
    x = act(mr.bn(mr.conv(input, model.conv1), model.bn1), 'relu');
    x = act(mr.bn(mr.conv(x, model.conv2), model.bn2), 'relu');
    x = mr.dense(gap(x), model.fc);
  } else if (model instanceof nn.ResNet) {
    x = act(mr.bn(mr.conv(input, model.conv1), model.bn1), 'relu');
    // Max pooling after ReLU: zero padding equals PyTorch's -inf padding there.
    x = tf.layers.zeroPadding2d({ padding: [[1, 1], [1, 1]] }).apply(x) as Sym;
    x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid' }).apply(x) as Sym;
    for (const stage of [model.layer1, model.layer2, model.layer3, model.layer4]) {
      for (const block of stage) x = resnetBlock(mr, x, block);
    }
    x = mr.dense(gap(x), model.fc);
  } else if (model instanceof nn.EfficientNet) {
    x = act(mr.bn(mr.conv(input, model._conv_stem), model._bn0), 'swish');
    for (const block of model._blocks) x = mbConv(mr, x, block);
    x = act(mr.bn(mr.conv(x, model._conv_head), model._bn1), 'swish');
    x = mr.dense(gap(x), model._fc);
  } else {
    throw new Error(`bench: no tf.layers mirror for ${model.constructor.name}`);
  }
  return { model: tf.model({ inputs: input, outputs: x }), copyWeights: () => mr.copyWeights() };
}

function resnetBlock(mr: Mirror, x: Sym, block: nn.Module): Sym {
  let out: Sym;
  if (block instanceof nn.BasicBlock) {
    out = act(mr.bn(mr.conv(x, block.conv1), block.bn1), 'relu');
    out = mr.bn(mr.conv(out, block.conv2), block.bn2);
  } else if (block instanceof nn.Bottleneck) {
    out = act(mr.bn(mr.conv(x, block.conv1), block.bn1), 'relu');
    out = act(mr.bn(mr.conv(out, block.conv2), block.bn2), 'relu');
    out = mr.bn(mr.conv(out, block.conv3), block.bn3);
  } else {
    throw new Error(`bench: unknown ResNet block ${block.constructor.name}`);
  }
  let identity = x;
  const ds = (block as nn.BasicBlock | nn.Bottleneck).downsample;
  if (ds) {
    if (!(ds instanceof nn.Sequential)) throw new Error('bench: expected the downsample as Sequential(conv, bn)');
    identity = mr.bn(mr.conv(x, ds.get(0) as nn.Conv2d), ds.get(1) as nn.BatchNorm2d);
  }
  return act(add(out, identity), 'relu');
}

function mbConv(mr: Mirror, inputs: Sym, b: nn.MBConvBlock): Sym {
  let x = inputs;
  if (b._expand_conv && b._bn0) x = act(mr.bn(mr.conv(x, b._expand_conv), b._bn0), 'swish');
  x = act(mr.bn(mr.conv(x, b._depthwise_conv), b._bn1), 'swish');
  if (b._se_reduce && b._se_expand) {
    const c = x.shape[3] as number;
    let s = tf.layers.reshape({ targetShape: [1, 1, c] }).apply(gap(x)) as Sym;
    s = act(mr.conv(s, b._se_reduce), 'swish');
    s = act(mr.conv(s, b._se_expand), 'sigmoid');
    x = tf.layers.multiply().apply([x, s]) as Sym;
  }
  x = mr.bn(mr.conv(x, b._project_conv), b._bn2);
  const a = b.args;
  if (a.idSkip && a.stride === 1 && a.inputFilters === a.outputFilters) x = add(x, inputs);
  return x;
}
