import { describe, it, expect, beforeAll } from 'vitest';
import { init, memoryInfo, type Tensor } from '@lib/nn';
import type { Module } from '../src/nn/module.js';
import { BatchNorm2d, Conv2d } from '../src/nn/layers/index.js';
import { Bottleneck, EfficientNet, resnet18, resnet34, resnet50, resnet101, resnet152 } from '../src/nn/models/index.js';

const shapes = (m: Module) => new Map([...m.stateDict()].map(([k, t]) => [k, t.shape]));

/**
 * torchvision state-dict size from the architecture: stem conv (1 key) + BN (5), per block its
 * convs (1 key each, no bias) and BNs (5 each), a downsample (conv + BN) opening stages 2–4 — and
 * stage 1 for bottlenecks, whose 64 → 256 channels change — and fc (2).
 */
const resnetKeys = (blocks: number[], bottleneck: boolean) => {
  const perBlock = bottleneck ? 3 * 6 : 2 * 6;
  const downsamples = bottleneck ? 4 : 3;
  return 6 + blocks.reduce((a, b) => a + b, 0) * perBlock + downsamples * 6 + 2;
};

/**
 * EfficientNet-PyTorch state-dict size: stem + head (conv + BN each, 12), fc (2), and per block
 * depthwise conv + BN (6), SE reduce/expand with bias (4), project conv + BN (6), plus an expand
 * conv + BN (6) except in the first stage (expand ratio 1). Repeats per stage: ceil(depth · r).
 */
const effnetKeys = (depth: number) => {
  const repeats = [1, 2, 2, 3, 3, 4, 1].map((r) => Math.ceil(depth * r));
  const blocks = repeats.reduce((a, b) => a + b, 0);
  return { blocks, keys: 14 + blocks * 22 - repeats[0] * 6 };
};

describe('model parameter counts and state-dict keys', () => {
  beforeAll(async () => { await init(); });

  const resnets: [string, () => Module, number, number[], boolean][] = [
    ['resnet18', () => resnet18(), 11_689_512, [2, 2, 2, 2], false],
    ['resnet34', () => resnet34(), 21_797_672, [3, 4, 6, 3], false],
    ['resnet50', () => resnet50(), 25_557_032, [3, 4, 6, 3], true],
    ['resnet101', () => resnet101(), 44_549_160, [3, 4, 23, 3], true],
    ['resnet152', () => resnet152(), 60_192_808, [3, 8, 36, 3], true],
  ];
  for (const [name, build, params, blocks, bottleneck] of resnets) {
    it(`${name}: ${params.toLocaleString('en-US')} parameters`, () => {
      const before = memoryInfo().liveBytes;
      const m = build();
      try {
        expect(m.numParameters()).toBe(params);
        const sd = shapes(m);
        expect(sd.size).toBe(resnetKeys(blocks, bottleneck));
        const e = bottleneck ? 4 : 1;
        expect(sd.get('conv1.weight')).toEqual([64, 3, 7, 7]);
        expect(sd.get('bn1.running_mean')).toEqual([64]);
        expect(sd.get('bn1.num_batches_tracked')).toEqual([]);
        expect(sd.get('layer2.0.downsample.0.weight')).toEqual([128 * e, 64 * e, 1, 1]);
        expect(sd.get('layer2.0.downsample.1.running_var')).toEqual([128 * e]);
        expect(sd.get('layer2.0.conv1.weight')).toEqual(bottleneck ? [128, 256, 1, 1] : [128, 64, 3, 3]);
        // v1.5: the stride sits on the 3x3 conv, which is conv2 in both block types
        expect(sd.get('layer4.0.conv2.weight')).toEqual([512, 512, 3, 3]);
        expect(sd.get(`layer3.${blocks[2] - 1}.bn2.weight`)).toEqual([256]);
        expect(sd.has(`layer3.${blocks[2]}.conv1.weight`)).toBe(false);
        expect(sd.has('layer1.0.downsample.0.weight')).toBe(bottleneck);
        if (bottleneck) expect(sd.get('layer4.2.conv3.weight')).toEqual([2048, 512, 1, 1]);
        expect(sd.get('fc.weight')).toEqual([1000, 512 * e]);
        expect(sd.get('fc.bias')).toEqual([1000]);
        expect([...sd.keys()].filter((k) => k.endsWith('num_batches_tracked')).length).toBe((sd.size - 2) / 6);
      } finally {
        m.dispose();
      }
      expect(memoryInfo().liveBytes).toBe(before);
    });
  }

  it('resnet152 has 932 state-dict keys, in torchvision order', () => {
    const m = resnet152();
    const keys = [...m.stateDict().keys()];
    m.dispose();
    expect(keys.length).toBe(932);
    expect(keys.slice(0, 8)).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked',
      'layer1.0.conv1.weight', 'layer1.0.bn1.weight',
    ]);
    expect(keys.slice(-2)).toEqual(['fc.weight', 'fc.bias']);
    expect(keys.indexOf('layer1.0.downsample.0.weight')).toBeGreaterThan(keys.indexOf('layer1.0.bn3.num_batches_tracked'));
  });

  const effnets: [string, number, number][] = [
    ['efficientnet-b0', 5_288_548, 1.0],
    ['efficientnet-b1', 7_794_184, 1.1],
    ['efficientnet-b2', 9_109_994, 1.2],
    ['efficientnet-b3', 12_233_232, 1.4],
    ['efficientnet-b4', 19_341_616, 1.8],
    ['efficientnet-b5', 30_389_784, 2.2],
    ['efficientnet-b6', 43_040_704, 2.6],
    ['efficientnet-b7', 66_347_960, 3.1],
  ];
  for (const [name, params, depth] of effnets) {
    it(`${name}: ${params.toLocaleString('en-US')} parameters`, () => {
      const m = EfficientNet.fromName(name);
      try {
        expect(m.numParameters()).toBe(params);
        const sd = shapes(m);
        const { blocks, keys } = effnetKeys(depth);
        expect(m._blocks.length).toBe(blocks);
        expect(sd.size).toBe(keys);
        expect(sd.has(`_blocks.${blocks - 1}._bn2.num_batches_tracked`)).toBe(true);
        expect(sd.has(`_blocks.${blocks}._bn2.weight`)).toBe(false);
        expect(sd.has('_blocks.0._expand_conv.weight')).toBe(false);
        expect(sd.get('_fc.weight')![0]).toBe(1000);
      } finally {
        m.dispose();
      }
    });
  }

  it('efficientnet-b0 and -b6 names and shapes match EfficientNet-PyTorch', () => {
    const b0 = EfficientNet.fromName('efficientnet-b0');
    const s0 = shapes(b0);
    expect([...s0.keys()].slice(0, 8)).toEqual([
      '_conv_stem.weight', '_bn0.weight', '_bn0.bias', '_bn0.running_mean', '_bn0.running_var', '_bn0.num_batches_tracked',
      '_blocks.0._depthwise_conv.weight', '_blocks.0._bn1.weight',
    ]);
    expect(s0.get('_conv_stem.weight')).toEqual([32, 3, 3, 3]);
    expect(s0.get('_blocks.0._depthwise_conv.weight')).toEqual([32, 1, 3, 3]);
    expect(s0.get('_blocks.0._se_reduce.weight')).toEqual([8, 32, 1, 1]);
    expect(s0.get('_blocks.0._se_reduce.bias')).toEqual([8]);
    expect(s0.get('_blocks.0._project_conv.weight')).toEqual([16, 32, 1, 1]);
    expect(s0.get('_blocks.1._expand_conv.weight')).toEqual([96, 16, 1, 1]);
    expect(s0.get('_blocks.1._bn0.running_var')).toEqual([96]);
    // squeeze width from the block's input channels (16 · 0.25), not the expanded 96
    expect(s0.get('_blocks.1._se_reduce.weight')).toEqual([4, 96, 1, 1]);
    expect(s0.get('_blocks.1._se_expand.weight')).toEqual([96, 4, 1, 1]);
    expect(s0.get('_blocks.3._depthwise_conv.weight')).toEqual([144, 1, 5, 5]);
    expect(s0.get('_blocks.15._project_conv.weight')).toEqual([320, 1152, 1, 1]);
    expect(s0.get('_conv_head.weight')).toEqual([1280, 320, 1, 1]);
    expect(s0.get('_bn1.weight')).toEqual([1280]);
    expect(s0.get('_fc.weight')).toEqual([1000, 1280]);
    expect([...s0.keys()].slice(-2)).toEqual(['_fc.weight', '_fc.bias']);
    b0.dispose();

    const b6 = EfficientNet.fromName('efficientnet-b6', { numClasses: 14 });
    const s6 = shapes(b6);
    expect(s6.size).toBe(986);
    expect(s6.get('_conv_stem.weight')).toEqual([56, 3, 3, 3]);
    expect(s6.get('_blocks.44._project_conv.weight')).toEqual([576, 3456, 1, 1]);
    expect(s6.get('_blocks.44._se_reduce.weight')).toEqual([144, 3456, 1, 1]);
    expect(s6.get('_blocks.42._expand_conv.weight')).toEqual([2064, 344, 1, 1]);
    expect(s6.get('_conv_head.weight')).toEqual([2304, 576, 1, 1]);
    expect(s6.get('_fc.weight')).toEqual([14, 2304]);
    b6.dispose();
  });

  it('torchvision init and layout: v1.5 strides, kaiming fan-out convs, BN ones/zeros, zero-init residual', async () => {
    const values = async (t: Tensor) => Array.from(await t.data());
    const m = resnet50({ zeroInitResidual: true });
    const b = m.layer2.get(0) as Bottleneck;
    expect([b.conv1.stride, b.conv2.stride, b.conv3.stride]).toEqual([[1, 1], [2, 2], [1, 1]]);
    expect((b.downsample as unknown as { get(i: number): Conv2d }).get(0).stride).toEqual([2, 2]);
    expect(new Set(await values(b.bn3.weight!))).toEqual(new Set([0]));
    expect(new Set(await values(b.bn2.weight!))).toEqual(new Set([1]));
    expect(new Set(await values(b.bn2.bias!))).toEqual(new Set([0]));
    // layer3.0.conv2: [256, 256, 3, 3], fan_out = 256·9, std = √2/√fan_out
    const w = await values((m.layer3.get(0) as Bottleneck).conv2.weight);
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(std / Math.sqrt(2 / (256 * 9))).toBeGreaterThan(0.98);
    expect(std / Math.sqrt(2 / (256 * 9))).toBeLessThan(1.02);
    m.dispose();
    const r18 = resnet18();
    expect(new Set(await values(r18.layer1.get(0).stateDict().get('bn2.weight')!))).toEqual(new Set([1]));
    r18.dispose();
  });

  it('efficientnet static padding follows the image as it shrinks; BN and drop-connect settings', () => {
    const m = EfficientNet.fromName('efficientnet-b0');
    // 224 → stem 3x3/2 pads [0, 1]; block 3 (5x5/2) sees 56: out 28, total pad 27·2 + 5 − 56 = 3 → [1, 2]
    expect(m._conv_stem.padding).toEqual([0, 1, 0, 1]);
    expect(m._blocks.get(3)._depthwise_conv.padding).toEqual([1, 2, 1, 2]);
    expect(m._blocks.get(4)._depthwise_conv.padding).toEqual([2, 2, 2, 2]);
    expect(m._blocks.get(1)._se_reduce!.padding).toEqual([0, 0, 0, 0]);
    const bns = [...m.modules()].filter((x): x is BatchNorm2d => x instanceof BatchNorm2d);
    expect(bns.every((bn) => Math.abs(bn.momentum - 0.01) < 1e-12 && bn.eps === 1e-3)).toBe(true);
    expect(m._blocks.get(0).dropConnectRate).toBe(0);
    expect(m._blocks.get(8).dropConnectRate).toBeCloseTo((0.2 * 8) / 16, 12);
    expect(m._dropout.p).toBe(0.2);
    m.dispose();
    const odd = EfficientNet.fromName('efficientnet-b0', { imageSize: 65, dropoutRate: 0.1, dropConnectRate: 0 });
    // 65 → out 33, total pad 32·2 + 3 − 65 = 2 → [1, 1]
    expect(odd._conv_stem.padding).toEqual([1, 1, 1, 1]);
    expect(odd._dropout.p).toBe(0.1);
    expect([...odd._blocks].every((blk) => blk.dropConnectRate === 0)).toBe(true);
    odd.dispose();
    const b7 = EfficientNet.fromName('efficientnet-b7');
    expect(b7._dropout.p).toBe(0.5);
    b7.dispose();
    expect(() => EfficientNet.fromName('efficientnet-b9')).toThrow(/unknown model 'efficientnet-b9'/);
  });
});
