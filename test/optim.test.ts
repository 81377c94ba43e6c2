import { describe, it, expect, beforeAll, afterEach, vi } from 'vitest';
import { init, keep, tensor, Tensor } from '@lib/nn';
import { pipelineCount, setMaxBindingSizeForTesting } from '../src/tensor/device.js';
import { SGD, Adam, AdamW, clipGradNorm, StepLR, type Optimizer, type SgdOptions, type AdamOptions } from '../src/optim/index.js';
import {
  Rng, arr, adamState, adamStep, adamwStep, sgdState, sgdStep,
  type Arr, type AdamState, type SgdState, type SgdOptions as RefSgd, type AdamOptions as RefAdam,
} from './reference/index.js';

const f32 = (xs: ArrayLike<number>) => Array.from(Float32Array.from(xs));

/** Host values rounded to f32 (what the GPU holds), so reference and kernels start from the same numbers. */
function randF32(shape: number[], rng: Rng): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  return arr(shape, f32(Array.from({ length: n }, () => rng.normal())));
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-6, atol = 1e-6): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= atol + rtol * Math.abs(expected[i]))) {
      throw new Error(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${err})`);
    }
  }
}

/** Replaces p.grad with a kept copy of `g` (or null). */
function setGrad(p: Tensor, g: Arr | null): void {
  p.grad?.dispose();
  p.grad = g ? keep(tensor(g.data, g.shape)) : null;
}

const SHAPES = [[3, 5], [4, 6]]; // 15 elements: one per thread; 24: four per thread

/** Runs `steps` steps on the GPU and with the reference (changing random grads each step) and compares the params. */
async function compareTrajectory(
  make: (ps: Tensor[]) => Optimizer<SgdOptions> | Optimizer<AdamOptions>,
  ref: (ps: Arr[], gs: Arr[], state: never) => void,
  refState: (ps: Arr[]) => unknown,
  seed: number,
  steps = 5,
): Promise<void> {
  const rng = new Rng(seed);
  const host = SHAPES.map((s) => randF32(s, rng));
  const params = host.map((h) => keep(tensor(h.data, h.shape, { requiresGrad: true })));
  const opt = make(params);
  const state = refState(host);
  for (let t = 0; t < steps; t++) {
    const grads = SHAPES.map((s) => randF32(s, rng));
    params.forEach((p, i) => setGrad(p, grads[i]));
    opt.step();
    ref(host, grads, state as never);
  }
  for (let i = 0; i < params.length; i++) expectClose(await params[i].data(), host[i].data, `param ${i}`);
  opt.dispose();
  params.forEach((p) => { setGrad(p, null); p.dispose(); });
}

describe('optim', () => {
  beforeAll(async () => { await init(); });
  afterEach(() => { vi.restoreAllMocks(); });

  const sgdCases: [string, RefSgd][] = [
    ['plain', { lr: 0.1 }],
    ['momentum', { lr: 0.1, momentum: 0.9 }],
    ['momentum + dampening', { lr: 0.05, momentum: 0.8, dampening: 0.3 }],
    ['nesterov', { lr: 0.1, momentum: 0.9, nesterov: true }],
    ['weight decay + momentum', { lr: 0.1, momentum: 0.5, weightDecay: 0.05 }],
    ['maximize + weight decay + nesterov', { lr: 0.02, momentum: 0.7, nesterov: true, weightDecay: 0.1, maximize: true }],
  ];
  it.each(sgdCases)('SGD %s follows torch.optim.SGD', async (_name, o) => {
    await compareTrajectory((ps) => new SGD(ps, o), (p, g, s: SgdState) => sgdStep(p, g, s, o), sgdState, 11);
  });

  const adamCases: [string, RefAdam][] = [
    ['defaults', {}],
    ['lr + betas + eps', { lr: 0.05, betas: [0.8, 0.99], eps: 1e-6 }],
    ['weight decay (L2)', { lr: 0.01, weightDecay: 0.1 }],
    ['amsgrad', { lr: 0.01, amsgrad: true }],
    ['maximize + amsgrad + weight decay', { lr: 0.01, amsgrad: true, maximize: true, weightDecay: 0.05 }],
  ];
  it.each(adamCases)('Adam %s follows torch.optim.Adam', async (_name, o) => {
    await compareTrajectory((ps) => new Adam(ps, o as Partial<AdamOptions>), (p, g, s: AdamState) => adamStep(p, g, s, o), adamState, 12);
  });

  const adamwCases: [string, RefAdam][] = [
    ['defaults (weightDecay 1e-2)', {}],
    ['strong decay + amsgrad', { lr: 0.05, weightDecay: 0.3, amsgrad: true }],
  ];
  it.each(adamwCases)('AdamW %s follows torch.optim.AdamW', async (_name, o) => {
    await compareTrajectory((ps) => new AdamW(ps, o as Partial<AdamOptions>), (p, g, s: AdamState) => adamwStep(p, g, s, o), adamState, 13);
  });

  it('AdamW decays decoupled from the gradient, Adam does not', async () => {
    // With a zero gradient Adam's update is 0 (m = 0), so only the decoupled decay moves the parameter.
    const a = keep(tensor([2, -4]));
    const b = keep(tensor([2, -4]));
    setGrad(a, arr([2], [0, 0]));
    setGrad(b, arr([2], [0, 0]));
    new AdamW([a], { lr: 0.1, weightDecay: 0.5 }).step();
    new Adam([b], { lr: 0.1 }).step();
    expectClose(await a.data(), [2 * 0.95, -4 * 0.95], 'adamw');
    expect(Array.from(await b.data())).toEqual([2, -4]);
  });

  it('splits updates of parameters larger than one storage binding', async () => {
    const o: RefAdam = { lr: 0.02, amsgrad: true, weightDecay: 0.01 };
    setMaxBindingSizeForTesting(512); // 128 floats per binding: 301 elements take three dispatches
    try {
      await compareTrajectory(
        (ps) => new Adam(ps, o as Partial<AdamOptions>),
        (p, g, s: AdamState) => adamStep(p, g, s, o),
        adamState,
        14,
        3,
      );
      const rng = new Rng(15);
      const h = randF32([301], rng);
      const p = keep(tensor(h.data, h.shape));
      const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
      const st = sgdState([h]);
      for (let t = 0; t < 3; t++) {
        const g = randF32([301], rng);
        setGrad(p, g);
        opt.step();
        sgdStep([h], [g], st, { lr: 0.1, momentum: 0.9 });
      }
      expectClose(await p.data(), h.data, 'split sgd');
    } finally {
      setMaxBindingSizeForTesting(undefined);
    }
  });

  it('gives each parameter group its own hyper-parameters', async () => {
    const rng = new Rng(21);
    const ha = randF32([5], rng);
    const hb = randF32([8], rng);
    const a = keep(tensor(ha.data, ha.shape));
    const b = keep(tensor(hb.data, hb.shape));
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.01, momentum: 0.5 }], { lr: 0.2, momentum: 0.9 });
    expect(opt.paramGroups.map((g) => [g.lr, g.momentum])).toEqual([[0.2, 0.9], [0.01, 0.5]]);
    const sa = sgdState([ha]);
    const sb = sgdState([hb]);
    for (let t = 0; t < 4; t++) {
      const ga = randF32([5], rng);
      const gb = randF32([8], rng);
      setGrad(a, ga);
      setGrad(b, gb);
      opt.step();
      sgdStep([ha], [ga], sa, { lr: 0.2, momentum: 0.9 });
      sgdStep([hb], [gb], sb, { lr: 0.01, momentum: 0.5 });
    }
    expectClose(await a.data(), ha.data, 'group 0');
    expectClose(await b.data(), hb.data, 'group 1');
  });

  it('skips parameters without a gradient (their Adam step count does not advance)', async () => {
    const rng = new Rng(31);
    const hs = [randF32([6], rng), randF32([7], rng)];
    const initial = Array.from(hs[1].data);
    const ps = hs.map((h) => keep(tensor(h.data, h.shape)));
    const o: RefAdam = { lr: 0.05 };
    const opt = new Adam(ps, o as Partial<AdamOptions>);
    const states = hs.map((h) => adamState([h]));
    for (let t = 0; t < 5; t++) {
      const g0 = randF32([6], rng);
      const g1 = t >= 2 ? randF32([7], rng) : null; // param 1 gets gradients from the third step on
      setGrad(ps[0], g0);
      setGrad(ps[1], g1);
      opt.step();
      adamStep([hs[0]], [g0], states[0], o);
      if (g1) adamStep([hs[1]], [g1], states[1], o);
      if (t === 1) expect(Array.from(await ps[1].data())).toEqual(initial);
    }
    expect(opt.state.get(ps[0])?.step).toBe(5);
    expect(opt.state.get(ps[1])?.step).toBe(3);
    expectClose(await ps[0].data(), hs[0].data, 'param 0');
    expectClose(await ps[1].data(), hs[1].data, 'param 1');
  });

  it('stateDict → loadStateDict resumes exactly, from the tensors themselves or from host arrays (JSON)', async () => {
    const rng = new Rng(41);
    const hs = SHAPES.map((s) => randF32(s, rng));
    const grads = Array.from({ length: 6 }, () => SHAPES.map((s) => randF32(s, rng)));
    const kinds = [
      (ps: Tensor[]) => new Adam([{ params: [ps[0]] }, { params: [ps[1]], lr: 0.02 }], { lr: 0.01, amsgrad: true, weightDecay: 0.01 }),
      (ps: Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true }),
    ];
    for (const make of kinds) {
      const a = hs.map((h) => keep(tensor(h.data, h.shape)));
      const optA = make(a);
      for (let t = 0; t < 3; t++) { a.forEach((p, i) => setGrad(p, grads[t][i])); optA.step(); }
      const sd = optA.stateDict();
      const host: Record<string, Record<string, number | number[]>> = {};
      for (const [i, st] of Object.entries(sd.state)) {
        host[i] = {};
        for (const [k, v] of Object.entries(st)) host[i][k] = typeof v === 'number' ? v : Array.from(await v.data());
      }
      const saved = JSON.parse(JSON.stringify({ ...sd, state: host }));
      // Fresh optimisers over copies of the parameters, built with other options that the load replaces.
      const fresh = async () => {
        const b = await Promise.all(a.map(async (p) => keep(tensor(await p.data(), p.shape))));
        const opt = kinds.indexOf(make) === 0
          ? new Adam([{ params: [b[0]] }, { params: [b[1]] }], { lr: 0.5 })
          : new SGD(b, { lr: 0.5, momentum: 0.1 });
        return { b, opt };
      };
      const fromJson = await fresh();
      fromJson.opt.loadStateDict(saved);
      const fromTensors = await fresh();
      fromTensors.opt.loadStateDict(sd); // copies: optA's later steps must not reach it
      expect(fromTensors.opt.paramGroups.map((g) => g.lr)).toEqual(optA.paramGroups.map((g) => g.lr));
      for (let t = 3; t < 6; t++) {
        for (const { b, opt } of [{ b: a, opt: optA }, fromJson, fromTensors]) {
          b.forEach((p, i) => setGrad(p, grads[t][i]));
          opt.step();
        }
      }
      for (let i = 0; i < a.length; i++) {
        const want = Array.from(await a[i].data());
        expect(Array.from(await fromJson.b[i].data())).toEqual(want);
        expect(Array.from(await fromTensors.b[i].data())).toEqual(want);
      }
    }
  });

  it('stateDict has PyTorch layout and loadStateDict rejects mismatches', async () => {
    const p = keep(tensor([1, 2, 3]));
    const q = keep(tensor([4, 5]));
    setGrad(p, arr([3], [0.5, -1, 2]));
    const opt = new Adam([p, q], { lr: 0.1 });
    opt.step();
    const sd = opt.stateDict();
    expect(Object.keys(sd.state)).toEqual(['0']); // q had no gradient, so no state
    expect(sd.state[0].step).toBe(1);
    expectClose(Array.from(await (sd.state[0].expAvg as Tensor).data()), [0.05, -0.1, 0.2], 'expAvg');
    expect(sd.paramGroups).toEqual([{ lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, params: [0, 1] }]);
    expect(() => new Adam([p], {}).loadStateDict(sd)).toThrow(/group 0 has 2 parameters/);
    const withState = (expAvg: number[] | Tensor) => ({ ...sd, state: { 0: { ...sd.state[0], expAvg } } });
    expect(() => new Adam([p, q], {}).loadStateDict(withState([1, 2]))).toThrow(/expAvg has 2 values for a parameter of shape \[3\]/);
    expect(() => new Adam([p, q], {}).loadStateDict(withState(q))).toThrow(/expAvg has 2 values for a parameter of shape \[3\]/);
  });

  it('step() records GPU work only: no read-back, no promise, no recompilation when lr changes', async () => {
    const p = keep(tensor([1, 2, 3, 4, 5]));
    setGrad(p, arr([5], [1, 1, 1, 1, 1]));
    const opts: Optimizer<SgdOptions | AdamOptions>[] = [new SGD([p], { lr: 0.1, momentum: 0.9 }), new AdamW([p], { amsgrad: true })];
    for (const opt of opts) opt.step(); // compile the pipelines once
    clipGradNorm([p], 0.1);
    const before = pipelineCount();
    const mapSpy = vi.spyOn(GPUBuffer.prototype, 'mapAsync');
    for (const opt of opts) {
      opt.paramGroups[0].lr *= 0.5;
      expect(opt.step()).toBeUndefined();
    }
    clipGradNorm([p], 0.1);
    expect(mapSpy).not.toHaveBeenCalled();
    expect(pipelineCount()).toBe(before);
    await p.data();
    expect(mapSpy).toHaveBeenCalled(); // the spy does see read-backs
  });

  it('follows a scheduler: lr travels to the kernel', async () => {
    const p = keep(tensor([0, 0]));
    setGrad(p, arr([2], [1, -2]));
    const opt = new SGD([p], { lr: 1 });
    const sched = new StepLR(opt, { stepSize: 2, gamma: 0.5 });
    let expected = 0;
    for (let t = 0; t < 5; t++) {
      expected -= opt.paramGroups[0].lr; // lr 1, 1, 0.5, 0.5, 0.25
      opt.step();
      sched.step();
    }
    expectClose(await p.data(), [expected, -2 * expected], 'param');
    expect(expected).toBe(-3.25);
  });

  it('zeroGrad disposes gradients by default and zeroes them in place on request', async () => {
    const p = keep(tensor([1, 2, 3]));
    const opt = new SGD([p], { lr: 0.1 });
    setGrad(p, arr([3], [1, 2, 3]));
    const g = p.grad!;
    opt.zeroGrad(false);
    expect(p.grad).toBe(g);
    expect(Array.from(await g.data())).toEqual([0, 0, 0]);
    opt.zeroGrad();
    expect(p.grad).toBeNull();
    expect(g.isDisposed).toBe(true);
  });

  it('rejects bad hyper-parameters and parameter lists', () => {
    const p = keep(tensor([1]));
    expect(() => new SGD([p], { lr: -1 })).toThrow(/invalid lr -1/);
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new SGD([p, p], { lr: 0.1 })).toThrow(/more than once/);
    expect(() => new SGD([], { lr: 0.1 })).toThrow(/empty parameter list/);
    expect(() => new Adam([p], { betas: [0.9, 1] })).toThrow(/beta2 1/);
    expect(() => new Adam([{ params: [p], eps: -1 }])).toThrow(/eps -1 in group 0/);
    setGrad(p, arr([2], [1, 1]));
    expect(() => new SGD([p], { lr: 0.1 }).step()).toThrow(/gradient of shape \[2\] for a parameter of shape \[1\]/);
    setGrad(p, null);
  });
});

describe('clipGradNorm', () => {
  beforeAll(async () => { await init(); });

  const hostNorm = (gs: Arr[], p: number) => {
    const all = gs.flatMap((g) => Array.from(g.data, Math.abs));
    return p === Infinity ? Math.max(...all) : all.reduce((s, x) => s + x ** p, 0) ** (1 / p);
  };

  it.each([[2, 0.5], [2, 100], [1, 2], [Infinity, 0.3], [3, 1]])('norm %s, maxNorm %s matches a host computation', async (normType, maxNorm) => {
    const rng = new Rng(51);
    const shapes = [[4, 5], [7], [3]];
    const params = shapes.map((s) => keep(tensor(new Float32Array(s.reduce((a, b) => a * b, 1)), s)));
    const grads = shapes.slice(0, 2).map((s) => randF32(s, rng)); // the last parameter has no gradient
    grads.forEach((g, i) => setGrad(params[i], g));
    const total = clipGradNorm(params, maxNorm, normType);
    expect(total.shape).toEqual([]);
    const norm = hostNorm(grads, normType);
    expectClose([await total.item()], [norm], 'total norm', 1e-5);
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    for (let i = 0; i < grads.length; i++) {
      expectClose(await params[i].grad!.data(), Array.from(grads[i].data, (x) => x * coef), `grad ${i}`, 1e-5);
    }
    expect(params[2].grad).toBeNull();
    params.forEach((p) => { setGrad(p, null); p.dispose(); });
  });

  it('returns 0 without gradients and rejects bad arguments', async () => {
    const p = keep(tensor([1, 2]));
    expect(await clipGradNorm([p], 1).item()).toBe(0);
    expect(() => clipGradNorm([p], -1)).toThrow(/maxNorm/);
    expect(() => clipGradNorm([p], 1, 0)).toThrow(/normType/);
  });
});
