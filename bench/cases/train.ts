/**
 * Whole training steps (forward, BCE-with-logits loss, backward, Adam) in images per second.
 * Ours records the step with no read-back and no awaited promise, and waits once at the end of the
 * iteration; tfjs runs `optimizer.minimize` and reads the cost back. Both start from the same
 * weights (ours copied into the tf.layers twin), and the check compares their logits, loss and
 * global gradient norm on the first batch (running the backward also compiles its pipelines before
 * the timing). EfficientNet runs without dropout and drop-connect on both sides, so they compare.
 */
import { nn, optim, tensor, tidy, type Tensor } from '@lib/nn';
import { expectClose, nchwToNhwc, randomData, type Case, type Prepared } from '../harness.js';
import { mirror, SmallCnn } from '../models.js';
import { syncOurs, syncTf, tf, tfTensor } from '../setup.js';

const CLASSES = 14;
const LR = 1e-3;

interface ModelSpec {
  name: string;
  batch: number;
  size: number;
  quick: boolean;
  build: () => nn.Module;
  /** A published parameter count (1000-class head) that both our model and its tf.layers twin must have. */
  reference?: { build: () => nn.Module; params: number };
}

const MODELS: ModelSpec[] = [
  { name: 'small CNN', batch: 16, size: 64, quick: true, build: () => new SmallCnn(CLASSES) },
  { name: 'ResNet-18', batch: 8, size: 64, quick: true, build: () => nn.resnet18({ numClasses: CLASSES }) },
  {
    name: 'EfficientNet-B0', batch: 8, size: 64, quick: true, build: () => effnet('efficientnet-b0', 64),
    reference: { build: () => nn.EfficientNet.fromName('efficientnet-b0', { imageSize: 64 }), params: 5_288_548 },
  },
  { name: 'ResNet-50', batch: 8, size: 64, quick: false, build: () => nn.resnet50({ numClasses: CLASSES }) },
  { name: 'EfficientNet-B6', batch: 8, size: 64, quick: false, build: () => effnet('efficientnet-b6', 64) },
];

const effnet = (name: string, size: number) =>
  nn.EfficientNet.fromName(name, { numClasses: CLASSES, imageSize: size, dropoutRate: 0, dropConnectRate: 0 });

export function trainCases(): Case[] {
  return MODELS.map((m) => ({
    group: 'train step',
    name: m.name,
    shape: `batch ${m.batch} at ${m.size}x${m.size}`,
    unit: 'images/s' as const,
    work: m.batch,
    quick: m.quick,
    prepare: () => prepareTrain(m),
  }));
}

async function prepareTrain(spec: ModelSpec): Promise<Prepared> {
  const { batch, size } = spec;
  if (spec.reference) checkReference(spec.name, spec.reference.build(), spec.reference.params, size);
  const model = spec.build().train();
  const twin = mirror(model, size);
  const copied = await twin.copyWeights();
  const ours = model.numParameters();
  const theirs = trainable(twin.model);
  if (copied !== ours || theirs !== ours) {
    throw new Error(`${spec.name}: parameter counts differ (ours ${ours}, tf.layers ${theirs}, copied ${copied})`);
  }
  const xShape = [batch, 3, size, size];
  const xd = randomData(batch * 3 * size * size, 31);
  const yd = Float32Array.from(randomData(batch * CLASSES, 32), (v) => (v > 0.5 ? 1 : 0));
  const x = tensor(xd, xShape);
  const y = tensor(yd, [batch, CLASSES]);
  const tx = tfTensor(nchwToNhwc(xd, xShape), [batch, size, size, 3]);
  const ty = tfTensor(yd, [batch, CLASSES]);
  const opt = new optim.Adam(model.parameters(), { lr: LR, eps: 1e-8 });
  const tfOpt = tf.train.adam(LR, 0.9, 0.999, 1e-8);
  const logitsTf = () => twin.model.apply(tx, { training: true }) as tf.Tensor;

  return {
    ours: {
      fn: async (pacer) => {
        tidy(() => {
          const loss = nn.functional.binaryCrossEntropyWithLogits(model.forward(x), y);
          opt.zeroGrad();
          loss.backward();
          opt.step();
        });
        await syncOurs(pacer);
      },
    },
    theirs: {
      fn: async (pacer) => {
        const cost = tf.tidy(() => tfOpt.minimize(() => tf.losses.sigmoidCrossEntropy(ty, logitsTf()) as tf.Scalar, true)!);
        await syncTf(cost, pacer);
        cost.dispose();
      },
    },
    check: async () => {
      // one forward and backward each: logits, loss and ‖∇‖ over all parameters (independent of
      // the two libraries' weight layouts); it also compiles the backward before the timing
      const [logits, loss]: Tensor[] = tidy(() => {
        const out = model.forward(x);
        const l = nn.functional.binaryCrossEntropyWithLogits(out, y);
        l.backward();
        return [out, l];
      });
      const norm = optim.clipGradNorm([...model.parameters()], Infinity);
      const [got, ourLoss, ourNorm] = [await logits.data(), await loss.item(), await norm.item()];
      [logits, loss, norm].forEach((v) => v.dispose());
      opt.zeroGrad();
      let tfLogits: tf.Tensor | null = null;
      const vars = twin.model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => {
        tfLogits = tf.keep(logitsTf());
        return tf.losses.sigmoidCrossEntropy(ty, tfLogits) as tf.Scalar;
      }, vars);
      // summed one by one: addN of every gradient would bind more buffers than a shader may have
      const tfNorm = tf.tidy(() => tf.sqrt(Object.values(grads).reduce((acc: tf.Tensor, g) => tf.add(acc, tf.sum(tf.square(g))), tf.scalar(0))));
      const want = await tfLogits!.data();
      const [theirLoss, theirNorm] = [(await value.data())[0], (await tfNorm.data())[0]];
      tf.dispose([tfLogits!, value, tfNorm, ...Object.values(grads)]);
      const close = expectClose('logits', got, want, 1e-2, 1e-3);
      expectClose('loss', [ourLoss], [theirLoss], 1e-3, 1e-6);
      expectClose('gradient norm', [ourNorm], [theirNorm], 1e-2, 1e-6);
      const ref = spec.reference ? ` (${spec.reference.params.toLocaleString('en-US')} with 1000 classes)` : '';
      return `${close}, loss and gradient norm ok, ${ours.toLocaleString('en-US')} parameters on both sides${ref}`;
    },
    dispose: () => {
      opt.zeroGrad();
      opt.dispose();
      model.dispose();
      [x, y].forEach((t) => t.dispose());
      [tx, ty].forEach((t) => t.dispose());
      twin.model.dispose();
      tfOpt.dispose();
    },
  };
}

const trainable = (m: tf.LayersModel) => m.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);

/** Both our model and its tf.layers twin have the published parameter count. */
function checkReference(name: string, model: nn.Module, params: number, size: number): void {
  const twin = mirror(model, size).model;
  const [ours, theirs] = [model.numParameters(), trainable(twin)];
  model.dispose();
  twin.dispose();
  if (ours !== params || theirs !== params) throw new Error(`${name}: expected ${params} parameters with 1000 classes, ours has ${ours}, tf.layers ${theirs}`);
}
