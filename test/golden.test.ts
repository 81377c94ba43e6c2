/**
 * The reference models against PyTorch: torchvision's ResNet-18 / ResNet-50 and EfficientNet-PyTorch's
 * B0 / B3 / B6 (`EfficientNet.from_name`), with the same hashed weights and inputs, computed in
 * float64 by scripts/golden_fixtures.py. Each case compares the eval-mode logits, the training
 * forward and loss, every parameter's gradient and every parameter and buffer after the optimiser
 * steps (Adam, SGD with momentum, Nesterov). GOLDEN_FIXTURES=path reads another fixture file (such
 * as the script's --large one, for a GPU).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { init, memoryInfo } from '@lib/nn';
import { compareRecords, goldenValues, hashUniform, recordModel, type GoldenRecord } from './golden/golden.js';

type Fixtures = { torch: string; records: GoldenRecord[] };
const load = (path: string | URL) => JSON.parse(readFileSync(path, 'utf8')) as Fixtures;
const committed = load(new URL('./fixtures/golden.json', import.meta.url));
const fixtures = process.env.GOLDEN_FIXTURES ? load(process.env.GOLDEN_FIXTURES) : committed;

describe(`golden: reference models in PyTorch ${fixtures.torch}`, () => {
  beforeAll(async () => {
    await init();
  });

  for (const want of fixtures.records) {
    const s = want.spec;
    const what = s.evalOnly
      ? 'eval logits match'
      : `logits, ${s.frozenBn ? 'frozen BN' : 'train-mode BN'} gradients and ${s.steps} ${s.optimizer?.name} step(s) match`;
    it(`${s.model} [${s.input}]: ${what}`, async () => {
      const before = memoryInfo().liveBytes;
      const got = await recordModel(s);
      expect(compareRecords(want, got)).toEqual([]);
      expect(memoryInfo().liveBytes).toBe(before);
    });
  }

  it('names what differs: logits, a gradient, a value after the steps, a missing tensor', () => {
    const want = committed.records[0];
    const got = structuredClone(want);
    got.evalLogits[3] *= 1.01;
    got.grads!['layer1.0.conv1.weight'].norm *= 1.01;
    got.after!['fc.bias'].head[0] += 0.01;
    delete got.grads!['bn1.bias'];
    expect(compareRecords(want, want)).toEqual([]);
    const bad = compareRecords(want, got);
    expect(bad).toHaveLength(4);
    expect(bad[0]).toMatch(/^eval logits\[3\]/);
    expect(bad[1]).toMatch(/^grad bn1\.bias: missing/);
    expect(bad[2]).toMatch(/^grad layer1\.0\.conv1\.weight norm/);
    expect(bad[3]).toMatch(/^after fc\.bias head\[0\]/);
  });

  it('derives weights and inputs from the hash exactly as the Python script does', () => {
    // printed by scripts/golden_fixtures.py's hash_uniform / golden_values (numpy, rounded to float32)
    expect(Array.from(Float32Array.from(hashUniform('input:1', 4)))).toEqual([0.7471588253974915, 0.12128865718841553, 0.0002864035777747631, -0.7570832371711731]);
    expect(Array.from(goldenValues('conv1.weight', [64, 3, 7, 7]).subarray(0, 4))).toEqual([-0.10244095325469971, -0.0397048220038414, 0.048268381506204605, 0.08300704509019852]);
    expect(Array.from(goldenValues('layer1.0.bn1.weight', [64]).subarray(0, 3))).toEqual([0.5827454924583435, 0.5962778925895691, 0.5002219080924988]);
    expect(Array.from(goldenValues('bn1.running_var', [64]).subarray(0, 3))).toEqual([0.618994414806366, 0.7747458219528198, 0.7838616371154785]);
    expect(goldenValues('bn1.num_batches_tracked', [])).toEqual(new Float32Array(1));
  });
});
