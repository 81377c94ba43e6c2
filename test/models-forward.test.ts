import { describe, it, expect, beforeAll } from 'vitest';
import { init, manualSeed, mapInPlace, memoryInfo, noGrad, randn, tensor, tidy, type Tensor } from '@lib/nn';
import { binaryCrossEntropyWithLogits } from '../src/nn/functional/index.js';
import type { Module } from '../src/nn/module.js';
import { BatchNorm2d, Conv2d, Linear, Sequential } from '../src/nn/layers/index.js';
import { BasicBlock, Bottleneck, EfficientNet, MBConvBlock, resnet152, resnet18, type BlockArgs } from '../src/nn/models/index.js';
import * as ref from './reference/index.js';
import { Adam } from '../src/optim/index.js';

// Forward passes on lavapipe are slow the first time (every new shape compiles pipelines, minutes
// for the two big models with a cold Mesa shader cache, seconds once it is warm).

/** One training step as the seed does it: forward, BCE loss, backward, Adam; returns the loss. */
async function adamStep(m: Module, x: Tensor, numClasses: number): Promise<number> {
  const opt = new Adam(m.parameters(), { lr: 1e-3, weightDecay: 1e-5 });
  const y = tensor(Array.from({ length: x.shape[0] * numClasses }, (_, i) => i % 2), [x.shape[0], numClasses]);
  const loss = tidy(() => {
    const l = binaryCrossEntropyWithLogits(m.train().forward(x), y);
    opt.zeroGrad();
    l.backward();
    opt.step();
    return l;
  });
  const v = await loss.item();
  opt.zeroGrad();
  opt.dispose();
  return v;
}

const toArr = async (t: Tensor) => ref.arr(t.shape, await t.data());
const bnRef = async (x: ref.Arr, bn: BatchNorm2d) =>
  ref.batchNorm2dTrain(x, { weight: await toArr(bn.weight!), bias: await toArr(bn.bias!), eps: bn.eps, momentum: bn.momentum });
const convRef = async (x: ref.Arr, c: Conv2d) =>
  ref.conv2d(x, await toArr(c.weight), c.bias ? await toArr(c.bias) : undefined, { stride: c.stride, padding: c.padding as ref.Padding4, groups: c.groups });

function expectClose(got: ref.Arr, want: ref.Arr, tol = 2e-4) {
  expect(got.shape).toEqual(want.shape);
  const scale = Math.max(1, ...Array.from(want.data, Math.abs));
  expect(ref.maxAbsDiff(got, want) / scale).toBeLessThan(tol);
}

const finite = async (t: Tensor) => Array.from(await t.data()).every(Number.isFinite);

/** One plain SGD step on every parameter: p ← p − lr·grad, then the gradients are cleared. */
function sgdStep(model: Module, lr: number) {
  noGrad(() => {
    for (const p of model.parameters()) {
      if (!p.grad) throw new Error(`parameter [${p.shape}] has no gradient`);
      mapInPlace('sgd_test', p, (w, g, a) => `${w} - ${a} * ${g}`, [p.grad, lr]);
    }
  });
  model.zeroGrad();
}

describe('model forward and training', () => {
  beforeAll(async () => { await init(); });

  it('a ResNet BasicBlock with a strided downsample matches the float64 reference (training mode)', async () => {
    manualSeed(1);
    const down = new Sequential(new Conv2d(4, 8, 1, { stride: 2, bias: false }), new BatchNorm2d(8));
    const block = new BasicBlock(4, 8, 2, down);
    const x = randn([2, 4, 6, 6]);
    const y = block.forward(x);
    const xa = await toArr(x);
    const bn1 = await bnRef(await convRef(xa, block.conv1), block.bn1);
    const main = (await bnRef(await convRef(ref.relu(bn1.out), block.conv2), block.bn2)).out;
    const skip = (await bnRef(await convRef(xa, down.get(0) as Conv2d), down.get(1) as BatchNorm2d)).out;
    expectClose(await toArr(y), ref.relu(ref.add(main, skip)));
    expectClose(await toArr(block.bn1.runningMean!), bn1.runningMean, 1e-5);
    expectClose(await toArr(block.bn1.runningVar!), bn1.runningVar, 1e-5);
    expect(await block.bn1.numBatchesTracked!.item()).toBe(1);
  });

  it('MBConv blocks (expansion, SE, static same padding, skip) match the float64 reference', async () => {
    manualSeed(2);
    const bn = { momentum: 0.01, eps: 1e-3 };
    const cases: [BlockArgs, [number, number], number[]][] = [
      // stride 1, in = out: skip connection; 5x5 input, k3 pads [1, 1, 1, 1]
      [{ numRepeat: 1, kernelSize: 3, stride: 1, expandRatio: 6, inputFilters: 4, outputFilters: 4, seRatio: 0.25, idSkip: true }, [5, 5], [2, 4, 5, 5]],
      // stride 2 on 6x6, k3: TF "SAME" pads only bottom/right [0, 1, 0, 1]; no expansion; 4 → 8 channels, no skip
      [{ numRepeat: 1, kernelSize: 3, stride: 2, expandRatio: 1, inputFilters: 4, outputFilters: 8, seRatio: 0.5, idSkip: true }, [6, 6], [2, 4, 6, 6]],
    ];
    for (const [args, size, shape] of cases) {
      const block = new MBConvBlock(args, bn, size);
      block.dropConnectRate = 0;
      const x = randn(shape);
      const y = block.forward(x);
      const xa = await toArr(x);
      let h = xa;
      if (block._expand_conv) h = ref.silu((await bnRef(await convRef(h, block._expand_conv), block._bn0!)).out);
      h = ref.silu((await bnRef(await convRef(h, block._depthwise_conv), block._bn1)).out);
      const squeezed = ref.mean(h, [2, 3], true);
      const s = await convRef(ref.silu(await convRef(squeezed, block._se_reduce!)), block._se_expand!);
      h = ref.mul(ref.sigmoid(s), h);
      h = (await bnRef(await convRef(h, block._project_conv), block._bn2)).out;
      if (args.stride === 1 && args.inputFilters === args.outputFilters) h = ref.add(h, xa);
      expectClose(await toArr(y), h);
    }
    expect(new MBConvBlock(cases[1][0], bn, [6, 6])._depthwise_conv.padding).toEqual([0, 1, 0, 1]);
  });

  it('resnet18 runs at 2x3x32x32 in training and 1x3x32x32 in eval mode', async () => {
    manualSeed(3);
    const m = resnet18();
    const y = m.forward(randn([2, 3, 32, 32]));
    expect(y.shape).toEqual([2, 1000]);
    expect(await finite(y)).toBe(true);
    expect(await m.bn1.numBatchesTracked!.item()).toBe(1);
    const mean = Array.from(await m.bn1.runningMean!.data());
    expect(mean.some((v) => v !== 0)).toBe(true);
    m.eval();
    const z = noGrad(() => m.forward(randn([1, 3, 32, 32])));
    expect(z.shape).toEqual([1, 1000]);
    expect(await finite(z)).toBe(true);
    expect(await m.bn1.numBatchesTracked!.item()).toBe(1);
    expect(Array.from(await m.bn1.runningMean!.data())).toEqual(mean);
    const table = m.summary([1, 3, 32, 32]).split('\n');
    expect(table.find((l) => l.startsWith('conv1 '))).toMatch(/Conv2d\s+\[1,64,16,16\]\s+9,408$/);
    expect(table.find((l) => l.startsWith('maxpool '))).toMatch(/MaxPool2d\s+\[1,64,8,8\]\s+0$/);
    expect(table.find((l) => l.startsWith('layer4.1.conv2 '))).toMatch(/\[1,512,1,1\]\s+2,359,296$/);
    expect(table.find((l) => l.startsWith('fc '))).toMatch(/Linear\s+\[1,1000\]\s+513,000$/);
    expect(table).toContain('Total params: 11,689,512');
    m.dispose();
  });

  it('one training step of resnet18 (new 14-way head): BCE, backward, SGD; lowers the loss, leaks nothing', async () => {
    manualSeed(4);
    const m = resnet18();
    m.fc = new Linear(m.fc.inFeatures, 14);
    const x = randn([2, 3, 32, 32]);
    const target = tensor(Array.from({ length: 28 }, (_, i) => (i % 3 === 0 ? 1 : 0)), [2, 14]);
    const before = new Map(await Promise.all([...m.namedParameters()].map(async ([k, p]) => [k, await p.data()] as const)));
    const step = async () => {
      const loss = tidy(() => {
        const l = binaryCrossEntropyWithLogits(m.forward(x), target);
        l.backward();
        return l;
      });
      for (const [k, p] of m.namedParameters()) {
        if (!p.grad || p.grad.shape.join() !== p.shape.join()) throw new Error(`${k}: no gradient of shape [${p.shape}]`);
      }
      sgdStep(m, 0.05);
      const v = await loss.item();
      loss.dispose();
      return v;
    };
    const v0 = await step();
    const live = memoryInfo().liveBuffers;
    const v1 = await step();
    expect(memoryInfo().liveBuffers).toBe(live);
    expect(Number.isFinite(v0)).toBe(true);
    expect(v1).toBeLessThan(v0);
    for (const [k, p] of m.namedParameters()) {
      const now = await p.data();
      expect(now.every(Number.isFinite), k).toBe(true);
      if (k === 'conv1.weight' || k === 'fc.bias' || k === 'layer4.1.bn2.weight') expect(Array.from(now), k).not.toEqual(Array.from(before.get(k)!));
    }
    m.dispose();
  });

  it('efficientnet-b0 at 32x32: eval is deterministic, training (dropout, drop-connect) trains', async () => {
    manualSeed(5);
    const m = EfficientNet.fromName('efficientnet-b0', { imageSize: 32, numClasses: 3 });
    const x = randn([2, 3, 32, 32]);
    m.eval();
    const [a, b] = noGrad(() => [m.forward(x), m.forward(x)]);
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    m.train();
    const loss = binaryCrossEntropyWithLogits(m.forward(x), tensor([[1, 0, 0], [0, 1, 1]]));
    loss.backward();
    expect(Number.isFinite(await loss.item())).toBe(true);
    const stem = Array.from(await m._conv_stem.weight.data());
    for (const [k, p] of m.namedParameters()) expect(p.grad?.shape, k).toEqual(p.shape);
    sgdStep(m, 0.1);
    const after = await m._conv_stem.weight.data();
    expect(after.every(Number.isFinite)).toBe(true);
    expect(Array.from(after)).not.toEqual(stem);
    m.dispose();
  });

  it('resnet152 with a 14-class head maps 2x3x64x64 to 2x14, and one Adam training step', async () => {
    manualSeed(6);
    const r = resnet152({ numClasses: 14 }).eval();
    const x = randn([2, 3, 64, 64]);
    const y = noGrad(() => r.forward(x));
    expect(y.shape).toEqual([2, 14]);
    expect(await finite(y)).toBe(true);
    const before = Array.from(await (r.layer3.get(20) as Bottleneck).conv2.weight.data());
    expect(Number.isFinite(await adamStep(r, x, 14))).toBe(true);
    const after = await (r.layer3.get(20) as Bottleneck).conv2.weight.data();
    expect(after.every(Number.isFinite)).toBe(true);
    expect(Array.from(after)).not.toEqual(before);
    expect(await finite(r.fc.weight)).toBe(true);
    r.dispose();
  }, 900_000);

  it('efficientnet-b6 with a replaced 14-class head: 2x3x64x64 to 2x14, and one Adam training step', async () => {
    manualSeed(7);
    const e = EfficientNet.fromName('efficientnet-b6', { imageSize: 64 });
    e._fc = new Linear(e._fc.inFeatures, 14);
    const x = randn([2, 3, 64, 64]);
    const z = noGrad(() => e.eval().forward(x));
    expect(z.shape).toEqual([2, 14]);
    expect(await finite(z)).toBe(true);
    const head = Array.from(await e._fc.weight.data());
    expect(Number.isFinite(await adamStep(e, x, 14))).toBe(true);
    const now = await e._fc.weight.data();
    expect(now.every(Number.isFinite)).toBe(true);
    expect(Array.from(now)).not.toEqual(head);
    expect(await finite(e._blocks.get(0)._depthwise_conv.weight)).toBe(true);
    e.dispose();
  }, 900_000);
});
