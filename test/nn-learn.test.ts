import { describe, it, expect, beforeAll } from 'vitest';
import { init, manualSeed, mapInPlace, noGrad, tensor, tidy } from '@lib/nn';
import { binaryCrossEntropyWithLogits } from '../src/nn/functional/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../src/nn/layers/index.js';
import { Rng } from './reference/index.js';

const SIZE = 16;

/**
 * Images with a 5x5 square brighter (label 1) or darker (label 0) than a background whose level
 * varies per image (±0.25, more than the square moves the image mean), plus pixel noise: the
 * classes separate only after a nonlinearity on local values, not by the raw global mean.
 */
function batch(rng: Rng, n: number) {
  const x = new Float32Array(n * SIZE * SIZE);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const label = rng.next() < 0.5 ? 1 : 0;
    y[i] = label;
    const level = rng.uniform(-0.25, 0.25);
    const top = Math.floor(rng.next() * (SIZE - 5));
    const left = Math.floor(rng.next() * (SIZE - 5));
    for (let r = 0; r < SIZE; r++) {
      for (let c = 0; c < SIZE; c++) {
        const inSquare = r >= top && r < top + 5 && c >= left && c < left + 5;
        x[(i * SIZE + r) * SIZE + c] = level + 0.3 * rng.normal() + (inSquare ? (label ? 1 : -1) : 0);
      }
    }
  }
  return { x: tensor(x, [n, 1, SIZE, SIZE]), y: tensor(y, [n, 1]), labels: y };
}

describe('a small CNN learns', () => {
  beforeAll(async () => { await init(); });

  it('bright vs dark squares to high accuracy', async () => {
    manualSeed(0);
    const rng = new Rng(42);
    const model = new Sequential(
      new Conv2d(1, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU(),
      new Conv2d(8, 16, 3, { padding: 1, stride: 2 }), new BatchNorm2d(16), new ReLU(),
      new AdaptiveAvgPool2d(1), new Flatten(), new Linear(16, 1),
    );
    const lr = 0.2;
    const losses: number[] = [];
    for (let step = 0; step < 150; step++) {
      const { x, y } = batch(rng, 32);
      const loss = tidy(() => {
        const l = binaryCrossEntropyWithLogits(model.forward(x), y);
        l.backward();
        return l;
      });
      noGrad(() => {
        for (const p of model.parameters()) mapInPlace('sgd_test', p, (w, g, a) => `${w} - ${a} * ${g}`, [p.grad!, lr]);
      });
      model.zeroGrad();
      x.dispose();
      y.dispose();
      if (step % 10 === 9) losses.push(await loss.item());
      loss.dispose();
    }
    model.eval();
    const test = batch(rng, 200);
    const logits = await noGrad(() => model.forward(test.x)).data();
    let correct = 0;
    logits.forEach((v, i) => (correct += Number((v > 0 ? 1 : 0) === test.labels[i])));
    // chance is ln 2 ≈ 0.69
    expect(losses[losses.length - 1]).toBeLessThan(0.2);
    expect(correct / 200).toBeGreaterThan(0.95);
  }, 120_000);
});
