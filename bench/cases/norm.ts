/**
 * Batch norm in training mode (batch statistics) at 8x64x56x56: forward, and forward + backward of
 * Σ y·r w.r.t. input, γ and β. Rates are nominal bytes: forward reads x and writes y (2 passes of
 * the tensor), forward + backward adds reading x and dy and writing dx (5 in all).
 * tfjs: `tf.moments` + `tf.batchNorm`, its gradients through `tf.grads` (what tf.layers runs).
 */
import { nn, tensor, tidy } from '@lib/nn';
import { expectClose, nchwToNhwc, nhwcToNchw, randomData, type Case, type Prepared } from '../harness.js';
import { syncOurs, syncTf, tf, tfTensor } from '../setup.js';

const SHAPE = [8, 64, 56, 56];
const EPS = 1e-5;

export function normCases(): Case[] {
  const numel = SHAPE.reduce((a, b) => a * b);
  return (['forward', 'forward+backward'] as const).map((pass) => ({
    group: 'batchnorm',
    name: `train ${pass}`,
    shape: SHAPE.join('x'),
    unit: 'GB/s' as const,
    work: (pass === 'forward' ? 2 : 5) * numel * 4,
    quick: true,
    prepare: async () => prepareNorm(pass === 'forward+backward'),
  }));
}

async function prepareNorm(backward: boolean): Promise<Prepared> {
  const [n, c, h, w] = SHAPE;
  const xd = randomData(n * c * h * w, 21, 2);
  const rd = randomData(n * c * h * w, 22);
  const gd = Float32Array.from(randomData(c, 23, 0.1), (v) => 1 + v);
  const bd = randomData(c, 24, 0.1);
  const x = tensor(xd, SHAPE, { requiresGrad: backward });
  const r = tensor(rd, SHAPE);
  const gamma = tensor(gd, [c], { requiresGrad: backward });
  const beta = tensor(bd, [c], { requiresGrad: backward });
  const runMean = tensor(new Float32Array(c), [c]);
  const runVar = tensor(new Float32Array(c).fill(1), [c]);
  const tx = tfTensor(nchwToNhwc(xd, SHAPE), [n, h, w, c]);
  const tr = tfTensor(nchwToNhwc(rd, SHAPE), [n, h, w, c]);
  const tg = tfTensor(gd, [c]);
  const tb = tfTensor(bd, [c]);

  const ours = () => nn.functional.batchNorm(x, runMean, runVar, gamma, beta, { training: true, eps: EPS });
  const releaseGrads = () => {
    for (const t of [x, gamma, beta]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  const tfForward = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(xx, [0, 1, 2]);
    return tf.batchNorm(xx, mean, variance, b, g, EPS);
  };
  // Returns the output (forward) or dx (forward + backward), the value both sides compare.
  const theirs = (): tf.Tensor => tf.tidy(() => {
    if (!backward) return tfForward(tx, tg, tb);
    const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tfForward(xx, g, b), tr));
    return tf.grads(f)([tx, tg, tb])[0];
  });

  return {
    ours: {
      fn: async (pacer) => {
        tidy(() => {
          const y = ours();
          if (backward) y.mul(r).sum().backward();
        });
        await syncOurs(pacer);
      },
      afterEach: releaseGrads,
    },
    theirs: { fn: async (pacer) => { const t = theirs(); await syncTf(t, pacer); t.dispose(); } },
    check: async () => {
      const out = tidy(() => {
        const y = ours();
        if (!backward) return y;
        y.mul(r).sum().backward();
        return x.grad!;
      });
      const got = await out.data();
      if (!backward) out.dispose();
      releaseGrads();
      const t = theirs();
      const want = nhwcToNchw(await t.data(), [n, h, w, c]);
      t.dispose();
      return expectClose(backward ? 'dx' : 'y', got, want, 1e-3, 1e-4);
    },
    dispose: () => {
      releaseGrads();
      [x, r, gamma, beta, runMean, runVar].forEach((t) => t.dispose());
      [tx, tr, tg, tb].forEach((t) => t.dispose());
    },
  };
}
