/** The autograd engine, memory management and error reporting of the runtime. */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as nn from '@lib/nn';
import { deviceInfo, init, memoryInfo, noGrad, tensor, tidy, keep } from '@lib/nn';
import { dispatch, panelsFit, releaseTexels, setMaxBindingSizeForTesting, setMaxDispatchesPerSubmit, pipelineCount, toPanels, toTexels } from '../src/tensor/device.js';
import { buffers, memoize, panelTexel, setStorageTexels, texel } from '../src/shaders/common.js';
import * as R from './reference/index.js';
import { gradcheck } from './gradcheck.js';

beforeAll(async () => {
  await init();
});

describe('autograd', () => {
  it('accumulates into .grad across backward calls and through shared subexpressions', async () => {
    const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
    const y = x.mul(x).add(x); // dy/dx = 2x + 1
    y.sum().backward();
    expect(Array.from(await x.grad!.data())).toEqual([3, 5, 7]);
    x.mul(2).sum().backward();
    expect(Array.from(await x.grad!.data())).toEqual([5, 7, 9]);
  });

  it('seeds non-scalars with a given gradient and rejects a missing or mis-shaped one', async () => {
    const x = tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
    const y = x.mul(3);
    expect(() => y.backward()).toThrow(/not a scalar; pass a gradient/);
    expect(() => y.backward(nn.ones([3]))).toThrow(/gradient shape \[3\] does not match tensor shape \[2,2\]/);
    y.backward(tensor([[1, 0], [0, 2]]));
    expect(await x.grad!.toArray()).toEqual([[3, 0], [0, 6]]);
  });

  it('sums gradients of broadcast inputs back to their shapes', async () => {
    const a = tensor([[1], [2]], undefined, { requiresGrad: true }); // [2,1]
    const b = tensor([10, 20, 30], undefined, { requiresGrad: true }); // [3]
    a.mul(b).sum().backward();
    expect(await a.grad!.toArray()).toEqual([[60], [60]]);
    expect(await b.grad!.toArray()).toEqual([3, 3, 3]);
  });

  it('hands one gradient to several inputs without freeing it early (add, broadcast first, already-seen input)', async () => {
    // add returns the same g for both inputs: reducing it for the first, or accumulating it into a
    // gradient the first input already has, must leave it intact for the second.
    const bias = tensor([0.5], undefined, { requiresGrad: true });
    const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
    bias.add(x).mul(x).sum().backward(); // d/dbias = Σx, d/dx = bias + 2x
    expect(Array.from(await bias.grad!.data())).toEqual([6]);
    expect(Array.from(await x.grad!.data())).toEqual([2.5, 4.5, 6.5]);
    const a = tensor([1, 2, 3], undefined, { requiresGrad: true });
    const b = tensor([4, 5, 6], undefined, { requiresGrad: true });
    a.add(b).mul(a).sum().backward(); // a is seen by mul first: d/da = 2a + b, d/db = a
    expect(Array.from(await a.grad!.data())).toEqual([6, 9, 12]);
    expect(Array.from(await b.grad!.data())).toEqual([1, 2, 3]);
    a.add(a).sum().backward(); // the same input twice: += 2
    expect(Array.from(await a.grad!.data())).toEqual([8, 11, 14]);
  });

  it('matches finite differences on random graphs with reused nodes, broadcasting, reductions and views', async () => {
    // Each graph draws steps over the nodes so far (leaves first), so nodes feed several later steps,
    // sometimes both operands of one; the output adds up every node nothing else consumed. Every
    // buffer the forward and backward made is freed once the gradients are.
    type Step = { op: 'add' | 'sub' | 'mul' | 'tanh' | 'sigmoid' | 'sum' | 'view' | 'clone'; args: number[]; dim?: number };
    const evaluate = <T extends { shape: number[] }>(steps: Step[], leaves: T[], f: Record<Step['op'], (args: T[], dim?: number) => T>, add: (a: T, b: T) => T) => {
      const nodes = [...leaves];
      const used = new Set<number>();
      for (const s of steps) {
        s.args.forEach((i) => used.add(i));
        nodes.push(f[s.op](s.args.map((i) => nodes[i]), s.dim));
      }
      return nodes.filter((_, i) => !used.has(i)).reduce(add);
    };
    const gpu: Record<Step['op'], (a: nn.Tensor[], dim?: number) => nn.Tensor> = {
      add: ([a, b]) => a.add(b), sub: ([a, b]) => a.sub(b), mul: ([a, b]) => a.mul(b), tanh: ([a]) => a.tanh(),
      sigmoid: ([a]) => a.sigmoid(), sum: ([a], d) => a.sum(d, true), view: ([a]) => a.reshape([a.numel]).reshape(a.shape), clone: ([a]) => a.clone(),
    };
    const ref: Record<Step['op'], (a: R.Arr[], dim?: number) => R.Arr> = {
      add: ([a, b]) => R.add(a, b), sub: ([a, b]) => R.sub(a, b), mul: ([a, b]) => R.mul(a, b), tanh: ([a]) => R.tanh(a),
      sigmoid: ([a]) => R.sigmoid(a), sum: ([a], d) => R.sum(a, [d!], true), view: ([a]) => a, clone: ([a]) => a,
    };
    const rng = new R.Rng(99);
    const ops: Step['op'][] = ['add', 'sub', 'mul', 'mul', 'tanh', 'sigmoid', 'sum', 'view', 'clone'];
    for (let trial = 0; trial < 6; trial++) {
      const leafShapes = [[2, 3, 4], [3, 4], [2, 1, 4], [1]];
      const shapes = [...leafShapes];
      const steps: Step[] = [];
      for (let k = 0; k < 10; k++) {
        const op = ops[rng.int(ops.length)];
        const pick = () => rng.int(shapes.length);
        const step: Step = { op, args: op === 'add' || op === 'sub' || op === 'mul' ? [pick(), pick()] : [pick()] };
        const shape = step.args.map((i) => shapes[i]).reduce(R.broadcastShape);
        if (op === 'sum') {
          const dims = shape.map((_, d) => d).filter((d) => shape[d] > 1);
          if (!dims.length) continue;
          step.dim = dims[rng.int(dims.length)];
        }
        steps.push(step);
        shapes.push(op === 'sum' ? shape.map((n, d) => (d === step.dim ? 1 : n)) : shape);
      }
      const leaves = leafShapes.map((s) => R.randArr(s, rng));
      const live = memoryInfo().liveBuffers;
      await gradcheck((...xs) => evaluate(steps, xs, gpu, (a, b) => a.add(b)), (...xs) => evaluate(steps, xs, ref, R.add), leaves);
      expect(memoryInfo().liveBuffers, 'buffers left after the graph, its backward and its gradients are gone').toBe(live);
    }
  });

  it('detach and noGrad cut the graph', async () => {
    const x = tensor([2], undefined, { requiresGrad: true });
    const y = x.mul(x.detach());
    y.sum().backward();
    expect(await x.grad!.item()).toBe(2);
    const z = noGrad(() => x.mul(3));
    expect(z.requiresGrad).toBe(false);
    expect(() => z.sum().backward()).toThrow(/does not require grad/);
  });

  it('computes no gradient for operands that do not require one', async () => {
    const dispatches = vi.spyOn(GPUComputePassEncoder.prototype, 'dispatchWorkgroups');
    const backwardDispatches = (c: nn.Tensor) => {
      const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
      const y = x.mul(c);
      dispatches.mockClear();
      y.backward(tensor([1, 1, 1]));
      return dispatches.mock.calls.length;
    };
    const both = backwardDispatches(tensor([4, 5, 6], undefined, { requiresGrad: true }));
    const constant = tensor([4, 5, 6]);
    expect(backwardDispatches(constant)).toBe(both - 1);
    expect(constant.grad).toBeNull();
    dispatches.mockRestore();
  });

  it('walks a graph 5,000 ops deep without recursion', async () => {
    const x = tensor([1], undefined, { requiresGrad: true });
    let y = x;
    for (let i = 0; i < 5000; i++) y = y.mul(1.0001);
    y.sum().backward();
    expect(await x.grad!.item()).toBeCloseTo(Math.pow(1.0001, 5000), 3);
  });

  it('says so when backward needs a tensor that was disposed', () => {
    const x = tensor([1, 2], undefined, { requiresGrad: true });
    const h = x.mul(2);
    const y = h.mul(h).sum();
    h.dispose();
    expect(() => y.backward()).toThrow(/backward through mul: tensor \[2\] was disposed/);
  });
});

describe('memory', () => {
  it('tidy frees intermediates, keeps returned and kept tensors', async () => {
    const before = memoryInfo().liveBuffers;
    let kept: nn.Tensor | null = null;
    const out = tidy(() => {
      const a = nn.randn([64, 64]);
      kept = keep(a.mul(2));
      return { result: nn.matmul(a, a).relu() };
    });
    expect(memoryInfo().liveBuffers).toBe(before + 2);
    expect(out.result.isDisposed).toBe(false);
    expect(kept!.isDisposed).toBe(false);
    out.result.dispose();
    kept!.dispose();
    expect(memoryInfo().liveBuffers).toBe(before);
  });

  it('200 training iterations (forward, backward, update) do not grow memory', async () => {
    nn.manualSeed(3);
    const w1 = keep(nn.randn([16, 32], 0, 0.1).requiresGrad_());
    const w2 = keep(nn.randn([32, 4], 0, 0.1).requiresGrad_());
    const x = keep(nn.randn([8, 16]));
    const target = keep(nn.randn([8, 4]));
    const step = () =>
      tidy(() => {
        const loss = x.matmul(w1).relu().matmul(w2).sub(target).square().mean();
        loss.backward();
        for (const w of [w1, w2]) {
          nn.mapInPlace('sgd', w, (p, g) => `${p} - 0.05 * ${g}`, [w.grad!]);
          w.grad!.dispose();
          w.grad = null;
        }
        return loss;
      });
    const first = step();
    const l0 = await first.item();
    first.dispose();
    const base = memoryInfo();
    let last = 0;
    for (let i = 0; i < 200; i++) {
      const loss = step();
      if (i % 50 === 49) last = await loss.item();
      loss.dispose();
    }
    const after = memoryInfo();
    expect(after.liveBuffers).toBe(base.liveBuffers);
    expect(after.liveBytes).toBe(base.liveBytes);
    expect(after.pooledBytes).toBeLessThanOrEqual(base.pooledBytes * 1.5 + 65536);
    expect(last).toBeLessThan(l0);
  });

  it('disposing twice is harmless and a disposed tensor says so when used', async () => {
    const t = nn.ones([3]);
    t.dispose();
    t.dispose();
    expect(() => t.add(1)).toThrow(/tensor \[3\] was disposed/);
  });
});

/**
 * Records `count` chained products of a random n x n matrix with itself (each scaled by 1/√n so
 * the values stay finite), for tests that need long device work: [the matrix, the last product].
 */
function matmulChain(n: number, count: number): [nn.Tensor, nn.Tensor] {
  const a = nn.randn([n, n]);
  const c = tidy(() => {
    let x = a;
    for (let i = 0; i < count; i++) x = nn.matmul(x, a).mul(1 / Math.sqrt(n));
    return x;
  });
  return [a, c];
}

describe('runtime', () => {
  it('caches pipelines by their generated code', async () => {
    const a = nn.randn([5, 7]);
    a.add(1).exp();
    const n = pipelineCount();
    a.add(2).exp(); // same code, different scalar uniform
    nn.randn([5, 7]).add(3).exp();
    expect(pipelineCount()).toBe(n);
    a.add(nn.randn([7])); // new broadcast pattern → new pipeline
    expect(pipelineCount()).toBeGreaterThan(n);
  });

  it('generates each kernel source once per configuration (memoize), apart for either texel binding', () => {
    const build = vi.fn((tm: number, opts: { cpu: boolean }) => `${texel('A', '0u')} ${tm} ${opts.cpu}`);
    const source = memoize(build);
    const first = source(8, { cpu: true });
    expect(source(8, { cpu: true })).toBe(first);
    expect(build).toHaveBeenCalledTimes(1);
    expect(source(8, { cpu: false })).not.toBe(first);
    expect(source(16, { cpu: true })).not.toBe(first);
    setStorageTexels(!deviceInfo().storageTexels);
    try {
      expect(source(8, { cpu: true })).not.toBe(first); // the texel declarations differ
    } finally {
      setStorageTexels(deviceInfo().storageTexels);
    }
    expect(source(8, { cpu: true })).toBe(first);
    expect(build).toHaveBeenCalledTimes(4);
  });

  it('gives the same results however often batches are submitted', async () => {
    const run = async () => {
      nn.manualSeed(11);
      let x = nn.randn([50]);
      for (let i = 0; i < 40; i++) x = x.mul(0.9).add(nn.rand([50]));
      return x.data();
    };
    setMaxDispatchesPerSubmit(1);
    const a = await run();
    setMaxDispatchesPerSubmit(256);
    const b = await run();
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('uploads into a recycled buffer never overtake recorded work that still reads it', async () => {
    const a = tensor([1, 2, 3, 4]);
    const b = a.mul(10); // recorded, not yet submitted
    a.dispose(); // buffer back to the pool
    const c = tensor([7, 7, 7, 7]); // likely the same buffer
    expect(Array.from(await b.data())).toEqual([10, 20, 30, 40]);
    expect(Array.from(await c.data())).toEqual([7, 7, 7, 7]);
  });

  it('copies buffer ranges into texels that kernels read back exactly (partial rows, offsets, pooled textures, both bindings)', async () => {
    const copyBack = (vec4s: number) => `${buffers([['T', 'texels'], ['OUT', 'read_write', 'vec4<f32>']])}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < ${vec4s}u) { OUT[gid.x] = ${texel('T', 'gid.x')}; }
}`;
    const before = memoryInfo().liveBytes;
    expect(deviceInfo().storageTexels).toBe(true); // Dawn offers read-only storage textures
    // 1024 texels per row: less than a row, whole rows, and whole rows plus a partial one, from offset 0
    // and 256 bytes; the last two as sampled textures (the binding used where WGSL lacks storage reads).
    for (const [vec4s, offset, storage] of [[5, 0, 1], [2048, 0, 1], [3000, 256, 1], [3000, 0, 0], [5, 256, 0]]) {
      setStorageTexels(storage === 1);
      const src = nn.arange(offset / 4 + vec4s * 4);
      const out = nn.Tensor.empty([vec4s * 4]);
      const t = toTexels({ buffer: src.buffer, offset, size: vec4s * 16 });
      dispatch({ name: 'texels_test', code: copyBack(vec4s), workgroups: Math.ceil(vec4s / 64), buffers: [t, out.buffer] });
      releaseTexels(t);
      const got = await out.data();
      expect(got[0]).toBe(offset / 4);
      expect(Array.from(got).every((v, i) => v === offset / 4 + i)).toBe(true);
      for (const x of [src, out]) x.dispose();
    }
    setStorageTexels(deviceInfo().storageTexels);
    expect(memoryInfo().liveBytes).toBe(before);
    const odd = nn.ones([8]);
    expect(() => toTexels({ buffer: odd.buffer, offset: 4, size: 16 })).toThrow(/not whole vec4s/);
    odd.dispose();
  });

  it('keeps the event loop turning while it waits for the device', async () => {
    // On a CPU adapter the wait sleeps in 1 ms slices between event-loop turns (`settle`): timers
    // must still fire during a long wait, and the results must arrive.
    const [a, c] = matmulChain(384, 6);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await nn.synchronize();
    clearInterval(timer);
    // About 0.7 GFLOP: tens of milliseconds on lavapipe, where the 1 ms timer must have fired.
    if (deviceInfo().isCpu) expect(ticks).toBeGreaterThan(2);
    const got = await c.data();
    expect(got.length).toBe(384 * 384);
    expect(got.every(Number.isFinite)).toBe(true);
    for (const t of [a, c]) t.dispose();
  });

  it('does not keep a core busy while it waits for the device (Linux: the main thread\'s CPU time)', async () => {
    // Dawn polls on every event-loop turn while a device promise is pending; spinning like that
    // takes a core from lavapipe's workers. `settle` blocks between 1 ms polls instead, so the main
    // thread should use a small part of the wait's wall time (spinning uses nearly all of it).
    // The process's main thread (the tests run in forked workers, see vitest.config.ts).
    const stat = `/proc/self/task/${process.pid}/stat`;
    const { existsSync, readFileSync } = await import('node:fs');
    const { isMainThread } = await import('node:worker_threads');
    if (!deviceInfo().isCpu || !isMainThread || !existsSync(stat)) return;
    // utime + stime of the main thread, in clock ticks (10 ms): fields 14 and 15, after the ")".
    const ticks = () => readFileSync(stat, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((t, f) => t + Number(f), 0);
    const [a, c] = matmulChain(512, 32);
    nn.flush();
    const [t0, cpu0] = [performance.now(), ticks()];
    await nn.synchronize();
    const [wallMs, cpuMs] = [performance.now() - t0, (ticks() - cpu0) * 10];
    for (const t of [a, c]) t.dispose();
    // About 8.6 GFLOP: 300-600 ms on lavapipe; too short a wait says nothing at 10 ms ticks.
    if (wallMs > 200) expect(cpuMs).toBeLessThan(0.5 * wallMs);
  });

  it('copies a stack of matrices into panels that kernels read back exactly (offset, both bindings)', async () => {
    // 2 matrices of 3 rows x 32 vec4s, panels 16 vec4s wide: layer 2m + p holds columns 16p .. 16p + 15.
    const [matrices, rows, rowTexels, width] = [2, 3, 32, 16];
    const layers = (matrices * rowTexels) / width;
    const count = layers * rows * width;
    const copyBack = `${buffers([['P', 'panels'], ['OUT', 'read_write', 'vec4<f32>']])}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= ${count}u) { return; }
  let x = gid.x % ${width}u; let y = gid.x / ${width}u % ${rows}u; let layer = gid.x / ${width * rows}u;
  OUT[gid.x] = ${panelTexel('P', 'x', 'y', 'layer')};
}`;
    const before = memoryInfo().liveBytes;
    const offset = 64; // vec4s before the stack in the source buffer (256 bytes)
    for (const storage of [true, false]) {
      setStorageTexels(storage);
      const src = nn.arange((offset + matrices * rows * rowTexels) * 4);
      const out = nn.Tensor.empty([count * 4]);
      const t = toPanels({ buffer: src.buffer, offset: offset * 16, size: matrices * rows * rowTexels * 16 }, rowTexels, rows, width, matrices);
      dispatch({ name: 'panels_test', code: copyBack, workgroups: Math.ceil(count / 64), buffers: [t, out.buffer] });
      releaseTexels(t);
      const got = await out.data();
      const want = Array.from({ length: count * 4 }, (_, i) => {
        const [c, x, y, layer] = [i % 4, (i >> 2) % width, Math.floor((i >> 2) / width) % rows, Math.floor((i >> 2) / (width * rows))];
        const [m, p] = [Math.floor(layer / (rowTexels / width)), layer % (rowTexels / width)];
        return (offset + (m * rows + y) * rowTexels + p * width + x) * 4 + c;
      });
      expect(Array.from(got)).toEqual(want);
      for (const x of [src, out]) x.dispose();
    }
    setStorageTexels(deviceInfo().storageTexels);
    expect(memoryInfo().liveBytes).toBe(before);
    // Copies need rows of whole 256-byte runs and whole panels.
    expect(panelsFit(20, 3, 16, 1)).toBe(false);
    expect(panelsFit(48, 3, 32, 1)).toBe(false);
    const odd = nn.ones([20 * 3 * 4]);
    expect(() => toPanels(odd.buffer, 20, 3, 16, 1)).toThrow(/do not fit panels/);
    odd.dispose();
  });

  it('splits element-wise work over tensors larger than one storage binding', async () => {
    const n = 10_000 + 3;
    const a = nn.arange(n);
    const b = nn.mul(nn.ones([n]), 2);
    setMaxBindingSizeForTesting(16 * 1024); // 4096 elements per binding
    try {
      const c = nn.add(a, b).mul(3); // two ops, each in three ranges
      nn.mapInPlace('scale', c, (t) => `${t} * 0.5`, []);
      const d = await c.data();
      expect(d[0]).toBe(3);
      expect(d[4095]).toBe((4095 + 2) * 1.5);
      expect(d[4096]).toBe((4096 + 2) * 1.5);
      expect(d[n - 1]).toBe((n - 1 + 2) * 1.5);
    } finally {
      setMaxBindingSizeForTesting(undefined);
    }
  });

  it('splits broadcasting element-wise work (three operands, a scalar, in place) over the binding limit', async () => {
    const [p, q, r] = [3, 5, 2503]; // 37,545 outputs in chunks that do not align with rows
    const host = (shape: number[], seed: number) => Float32Array.from({ length: shape.reduce((x, y) => x * y) }, (_, i) => Math.sin(seed + i * 0.37));
    const shapes = [[p, 1, r], [1, q, 1], [q, r]];
    const data = shapes.map((s, k) => host(s, k));
    const run = async () => {
      const [a, b, c] = shapes.map((s, k) => tensor(data[k], s));
      const out = nn.map('fma_half', (x, y, z, h) => `${x} * ${y} + ${z} * ${h}`, [a, b, c, 0.5]);
      nn.mapInPlace('sub_b', out, (t, y) => `${t} - ${y}`, [b]);
      const result = await out.data();
      [a, b, c, out].forEach((t) => t.dispose());
      return result;
    };
    const whole = await run();
    setMaxBindingSizeForTesting(16 * 1024);
    let split: Float32Array;
    try {
      split = await run();
    } finally {
      setMaxBindingSizeForTesting(undefined);
    }
    expect(split).toEqual(whole);
    for (const i of [0, 4095, 4096, 12_345, p * q * r - 1]) {
      const [x, y, z] = [Math.floor(i / (q * r)), Math.floor(i / r) % q, i % r];
      const want = data[0][x * r + z] * data[1][y] + data[2][y * r + z] * 0.5 - data[1][y];
      expect(split[i]).toBeCloseTo(want, 5);
    }
  });
});
