/** Matrix products: square sizes and the im2col shapes of ResNet's 3x3 convolutions at 56x56 and 28x28. */
import { matmul, tensor, tidy } from '@lib/nn';
import { expectClose, randomData, type Case } from '../harness.js';
import { syncOurs, syncTf, tf, tfTensor } from '../setup.js';

const SHAPES: [m: number, k: number, n: number, quick: boolean][] = [
  [256, 256, 256, true],
  [512, 512, 512, false],
  [1024, 1024, 1024, true],
  [3136, 576, 64, false],
  [784, 1152, 128, false],
];

export function matmulCases(): Case[] {
  return SHAPES.map(([m, k, n, quick]) => ({
    group: 'matmul',
    name: 'matmul',
    shape: `${m}x${k}x${n}`,
    unit: 'GFLOP/s',
    work: 2 * m * n * k,
    quick,
    prepare: async () => {
      const ad = randomData(m * k, 1);
      const bd = randomData(k * n, 2);
      const a = tensor(ad, [m, k]);
      const b = tensor(bd, [k, n]);
      const ta = tfTensor(ad, [m, k]);
      const tb = tfTensor(bd, [k, n]);
      return {
        ours: {
          fn: async (pacer) => {
            tidy(() => {
              matmul(a, b);
            });
            await syncOurs(pacer);
          },
        },
        theirs: {
          fn: async (pacer) => {
            const c = tf.matMul(ta, tb);
            await syncTf(c, pacer);
            c.dispose();
          },
        },
        check: async () => {
          const c = matmul(a, b);
          const got = await c.data();
          c.dispose();
          const t = tf.matMul(ta, tb);
          const want = await t.data();
          t.dispose();
          // Sums of k products of unit normals: errors grow like sqrt(k).
          return expectClose('matmul', got, want, 1e-3, 1e-5 * Math.sqrt(k));
        },
        dispose: () => {
          a.dispose();
          b.dispose();
          ta.dispose();
          tb.dispose();
        },
      };
    },
  }));
}
