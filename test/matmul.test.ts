import { describe, it, expect, beforeAll } from 'vitest';
import * as nn from '@lib/nn';
import * as R from './reference/index.js';
import { expectClose, gradcheck, toTensor, withDeviceInfo } from './gradcheck.js';
import { usesPanels } from '../src/tensor/ops/matmul.js';
import { packsB } from '../src/shaders/matmul.js';

const rng = new R.Rng(20240611);
const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));

// Both kernels: the subgroup one (when the adapter has subgroups) and the fallback without them.
const paths = [{ subgroups: true }, { subgroups: false }];

/** op(a)·op(b) in float64, transposing the stored operands the way `mm` reads them. */
function refMm(a: R.Arr, b: R.Arr, transA: boolean, transB: boolean): R.Arr {
  const t = (x: R.Arr) => R.transpose(x, x.shape.length - 2, x.shape.length - 1);
  return R.matmul(transA ? t(a) : a, transB ? t(b) : b);
}

describe('matmul kernel', () => {
  beforeAll(async () => {
    await nn.init();
  });

  it('matches the reference on seeded random shapes, every transpose layout, both kernels', async () => {
    // Sizes mix multiples of 4 (vec4 loads and stores) with odd ones (scalar paths), k below,
    // at and above the 8-step chunk, and m, n below one tile. Each layout of sizes compiles its
    // own pipeline (seconds on lavapipe), so the list is short.
    // k = 32 and 24: a whole number of the kernels' 16- or 8-step chunks (no reads past k) or not.
    const shapes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [8, 12, 16], [20, 32, 36], [9, 24, 12], [int(1, 40) | 1, int(9, 40), int(1, 40) | 1]];
    for (const opts of paths) {
      for (const [m, k, n] of shapes) {
        for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
          const a = R.randArr(transA ? [k, m] : [m, k], rng);
          const b = R.randArr(transB ? [n, k] : [k, n], rng);
          const got = nn.tidy(() => nn.mm(toTensor(a), toTensor(b), transA, transB, opts));
          await expectClose(got, refMm(a, b, transA, transB), 1e-4, 1e-4, `mm ${m}x${k}x${n} transA=${transA} transB=${transB} ${JSON.stringify(opts)}`);
          got.dispose();
        }
      }
    }
  });

  it('covers a full-size tile with a partial last chunk', async () => {
    const [m, k, n] = [70, 45, 132];
    for (const opts of paths) {
      const a = R.randArr([m, k], rng);
      const b = R.randArr([k, n], rng);
      await expectClose(nn.mm(toTensor(a), toTensor(b), false, false, opts), R.matmul(a, b), 1e-4, 1e-4, JSON.stringify(opts));
    }
  });

  it('batched with broadcast batch dims and 1-D operands, both kernels', async () => {
    const cases: [number[], number[]][] = [
      [[2, 3, 5, 4], [3, 4, 6]],
      [[1, 5, 8], [4, 8, 3]],
      [[7], [2, 7, 5]],
      [[3, 9], [9]],
    ];
    for (const opts of paths) {
      for (const [sa, sb] of cases) {
        const a = R.randArr(sa, rng);
        const b = R.randArr(sb, rng);
        const want = R.matmul(a, b);
        if (sa.length > 1 && sb.length > 1) {
          await expectClose(nn.mm(toTensor(a), toTensor(b), false, false, opts), want, 1e-4, 1e-4, `[${sa}]x[${sb}] ${JSON.stringify(opts)}`);
        } else {
          await expectClose(nn.matmul(toTensor(a), toTensor(b)), want, 1e-4, 1e-4, `[${sa}]x[${sb}]`);
        }
      }
    }
  });

  it('copies a wide row-major B into panels: batched and broadcast B, k past the last chunk', async () => {
    // packsB: at least 256 rows of A, 1024 columns of B (a multiple of 64, for the copies) and
    // k = 256; k = 257 reads past the last whole 16-step chunk (and has no vec4 A).
    const cases: [number[], number[]][] = [
      [[256, 257], [257, 1024]],
      [[2, 300, 256], [2, 256, 1024]],
      [[2, 257, 272], [272, 1088]],
    ];
    for (const [sa, sb] of cases) {
      const [m, k, n] = [sa.at(-2)!, sa.at(-1)!, sb.at(-1)!];
      const batchShape = sa.length > 2 ? [2] : [];
      const params = { m, n, k, transA: false, transB: false, batchShape, batchStridesA: batchShape.map(() => 1), batchStridesB: batchShape.map(() => (sb.length > 2 ? 1 : 0)), subgroups: nn.deviceInfo().subgroups, cpu: nn.deviceInfo().isCpu };
      expect(usesPanels(params, sb.length > 2 ? 2 : 1)).toBe(nn.deviceInfo().subgroups && nn.deviceInfo().isCpu);
      const a = R.randArr(sa, rng);
      const b = R.randArr(sb, rng);
      const got = nn.tidy(() => nn.mm(toTensor(a), toTensor(b)));
      await expectClose(got, R.matmul(a, b), 1e-4, 1e-4, `[${sa}]x[${sb}] in panels`);
      got.dispose();
    }
  });

  it('keeps a B whose rows are not a multiple of 64 columns in its stored layout', async () => {
    // n = 1028 and 1100 pass packsB but cannot be copied into panels (rows of whole 256-byte runs).
    for (const [sa, sb] of [[[256, 256], [256, 1028]], [[257, 272], [272, 1100]]] as [number[], number[]][]) {
      const params = { m: sa[0], n: sb[1], k: sa[1], transA: false, transB: false, batchShape: [], batchStridesA: [], batchStridesB: [], subgroups: true, cpu: true };
      expect(packsB(params)).toBe(true);
      expect(usesPanels(params, 1)).toBe(false);
      const a = R.randArr(sa, rng);
      const b = R.randArr(sb, rng);
      const got = nn.tidy(() => nn.mm(toTensor(a), toTensor(b)));
      await expectClose(got, R.matmul(a, b), 1e-4, 1e-4, `[${sa}]x[${sb}] without panels`);
      got.dispose();
    }
  });

  it('folds more than 65,535 workgroups into a 2-D grid', async () => {
    // One tiny matrix per batch entry gives one workgroup each.
    const batch = 70_000;
    const a = R.randArr([batch, 1, 2], rng);
    const b = R.randArr([2, 1], rng);
    const got = nn.tidy(() => nn.mm(toTensor(a), toTensor(b)));
    await expectClose(got, R.matmul(a, b), 1e-5, 1e-4, 'folded grid');
    got.dispose();
  });

  it('on a GPU adapter, groups 8-lane tiles per workgroup (A shared by shuffle): every layout, batched, a partly filled last workgroup', async () => {
    // Tile counts from 1 to past one workgroup of 16 tiles (not a multiple of it), vec4 and scalar
    // layouts, and a batch whose matrices spread over workgroups.
    const shapes: [number[], number[], boolean][] = [[[3, 5], [5, 7], true], [[70, 45], [45, 132], true], [[136, 64], [64, 40], false], [[3, 9, 24], [24, 12], true]];
    const swap = (s: number[]) => [...s.slice(0, -2), s.at(-1)!, s.at(-2)!];
    await withDeviceInfo({ isCpu: false }, async () => {
      for (const [sa, sb, fallbackToo] of shapes) {
        for (const opts of fallbackToo ? paths : [paths[0]]) {
          for (const [transA, transB] of [[false, false], [true, true]]) {
            const a = R.randArr(transA ? swap(sa) : sa, rng);
            const b = R.randArr(transB ? swap(sb) : sb, rng);
            const got = nn.tidy(() => nn.mm(toTensor(a), toTensor(b), transA, transB, opts));
            await expectClose(got, refMm(a, b, transA, transB), 1e-4, 1e-4, `gpu mm [${sa}]x[${sb}] transA=${transA} transB=${transB} ${JSON.stringify(opts)}`);
            got.dispose();
          }
        }
      }
    });
  });

  it('gradients of matmul match finite differences', async () => {
    await gradcheck(nn.matmul, R.matmul, [R.randArr([5, 9], rng), R.randArr([9, 6], rng)]);
    await gradcheck(nn.matmul, R.matmul, [R.randArr([2, 3, 8], rng), R.randArr([8, 4], rng)]);
  });

  it('rejects mismatched inner dims', () => {
    expect(() => nn.mm(nn.zeros([2, 3]), nn.zeros([2, 3]), false, false)).toThrow(/inner dims 3 and 2/);
  });
});
