import { describe, it, expect, beforeAll } from 'vitest';
import { init, tensor, matmul, sum, softmax, randn, memoryInfo, tidy } from '@lib/nn';

describe('smoke', () => {
  beforeAll(async () => { await init(); });
  it('adds and multiplies', async () => {
    const a = tensor([[1, 2, 3], [4, 5, 6]]);
    const b = tensor([10, 20, 30]);
    expect(Array.from(await a.add(b).data())).toEqual([11, 22, 33, 14, 25, 36]);
    expect(Array.from(await a.mul(2).data())).toEqual([2, 4, 6, 8, 10, 12]);
    const c = matmul(a, tensor([[1, 0], [0, 1], [1, 1]]));
    expect(await c.toArray()).toEqual([[4, 5], [10, 11]]);
    expect(await sum(a).item()).toBe(21);
    expect(Array.from(await sum(a, 0).data())).toEqual([5, 7, 9]);
    const s = await softmax(a, 1).data();
    expect(s[0] + s[1] + s[2]).toBeCloseTo(1, 5);
  });
  it('backward', async () => {
    const x = tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
    const w = tensor([[0.5], [-1]], undefined, { requiresGrad: true });
    const y = matmul(x, w).relu().sum();
    y.backward();
    expect(Array.from(await x.grad!.data(), Math.abs)).toEqual([0, 0, 0, 0]);
    const z = matmul(x, w).mul(-1).relu().sum();
    z.backward();
    expect(await w.grad!.toArray()).toEqual([[-4], [-6]]);
    const big = randn([300, 300]);
    const m0 = memoryInfo().liveBuffers;
    tidy(() => { matmul(big, big).sum(); });
    expect(memoryInfo().liveBuffers).toBe(m0);
  });
});
