import { describe, it, expect, beforeAll } from 'vitest';
import { init, tensor, tidy, mul, add, sum, type Tensor } from '@lib/nn';
import { Module, parameter, isParameter } from '../src/nn/module.js';
import { BatchNorm2d, Conv2d, Linear, ReLU, Sequential, ModuleList, Identity } from '../src/nn/layers/index.js';

/** y = x · scale + shift, with a non-persistent buffer: needs no functional kernels. */
class Affine extends Module {
  scale: Tensor;
  shift: Tensor;
  declare calls: Tensor;
  constructor(n: number) {
    super();
    this.scale = parameter(tensor(Array.from({ length: n }, (_, i) => i + 1)));
    this.shift = parameter(tensor(new Array(n).fill(0.5)));
    this.registerBuffer('calls', tensor([0]), { persistent: false });
  }
  forward(x: Tensor): Tensor {
    return add(mul(x, this.scale), this.shift);
  }
}

class Net extends Module {
  features = new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU());
  head = new Affine(4);
  fc = new Linear(4, 2);
  forward(x: Tensor): Tensor {
    return this.fc.forward(this.head.forward(x));
  }
}

const keysOf = (m: Map<string, Tensor>) => [...m.keys()];

describe('Module', () => {
  beforeAll(async () => { await init(); });

  it('discovers parameters, buffers and children from properties, in order', () => {
    const net = new Net();
    expect([...net.namedParameters()].map(([k]) => k)).toEqual([
      'features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias',
      'head.scale', 'head.shift', 'fc.weight', 'fc.bias',
    ]);
    expect([...net.namedBuffers()].map(([k]) => k)).toEqual([
      'features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked', 'head.calls',
    ]);
    expect([...net.namedChildren()].map(([k]) => k)).toEqual(['features', 'head', 'fc']);
    expect([...net.namedModules()].map(([k]) => k)).toEqual(['', 'features', 'features.0', 'features.1', 'features.2', 'head', 'fc']);
    // 4·3·3·3 + 4 (conv) + 4 + 4 (bn) + 4 + 4 (affine) + 2·4 + 2 (fc)
    expect(net.numParameters()).toBe(108 + 4 + 8 + 8 + 10);
    for (const p of net.parameters()) {
      expect(isParameter(p)).toBe(true);
      expect(p.requiresGrad).toBe(true);
    }
  });

  it('lists a shared parameter once, but the state dict under every name', () => {
    const a = new Linear(3, 3);
    const b = new Linear(3, 3);
    b.weight = a.weight;
    const seq = new Sequential(a, b);
    expect([...seq.namedParameters()].map(([k]) => k)).toEqual(['0.weight', '0.bias', '1.bias']);
    expect(seq.numParameters()).toBe(9 + 3 + 3);
    expect(keysOf(seq.stateDict())).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    // the same module twice in a container is visited once as well
    const twice = new Sequential(a, a);
    expect([...twice.parameters()].length).toBe(2);
  });

  it('keeps parameters and buffers out of tidy scopes', () => {
    const net = tidy(() => new Net());
    for (const t of [...net.parameters(), ...net.buffers()]) expect(t.isDisposed).toBe(false);
  });

  it('train() and eval() recurse; apply() visits children first', () => {
    const net = new Net();
    expect([...net.modules()].every((m) => m.training)).toBe(true);
    net.eval();
    expect([...net.modules()].some((m) => m.training)).toBe(false);
    net.features.train();
    expect(net.features.get(1).training).toBe(true);
    expect(net.training).toBe(false);
    const order: string[] = [];
    new Sequential(new ReLU(), new Sequential(new Identity())).apply((m) => order.push(m.constructor.name));
    expect(order).toEqual(['ReLU', 'Identity', 'Sequential', 'Sequential']);
  });

  it('zeroGrad disposes and clears gradients', async () => {
    const m = new Affine(3);
    sum(m.forward(tensor([1, 2, 3]))).backward();
    const g = m.scale.grad!;
    expect(Array.from(await g.data())).toEqual([1, 2, 3]);
    m.zeroGrad();
    expect(m.scale.grad).toBeNull();
    expect(m.shift.grad).toBeNull();
    expect(g.isDisposed).toBe(true);
  });

  it('stateDict uses PyTorch names and layouts', () => {
    const sd = new Net().stateDict();
    expect(keysOf(sd)).toEqual([
      'features.0.weight', 'features.0.bias',
      'features.1.weight', 'features.1.bias', 'features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked',
      'head.scale', 'head.shift', 'fc.weight', 'fc.bias',
    ]);
    expect(sd.get('features.0.weight')!.shape).toEqual([4, 3, 3, 3]);
    expect(sd.get('fc.weight')!.shape).toEqual([2, 4]);
    expect(sd.get('features.1.num_batches_tracked')!.shape).toEqual([]);
    expect(sd.has('head.calls')).toBe(false);
  });

  it('loadStateDict copies values and, when strict, names every bad key in one error', async () => {
    const src = new Net();
    const dst = new Net();
    dst.loadStateDict(src.stateDict());
    expect(Array.from(await dst.fc.weight.data())).toEqual(Array.from(await src.fc.weight.data()));
    expect(Array.from(await dst.features.get(0).stateDict().get('weight')!.data())).toEqual(
      Array.from(await src.features.get(0).stateDict().get('weight')!.data()),
    );
    // the copy is a copy: changing the source afterwards leaves the target alone
    src.fc.bias!.dispose();
    expect(dst.fc.bias!.isDisposed).toBe(false);

    const other = new Net();
    const before = Array.from(await other.head.scale.data());
    const bad = new Map(new Net().stateDict());
    bad.delete('fc.bias');
    bad.set('fc.extra', tensor([1]));
    bad.set('head.scale', tensor([9, 9, 9]));
    let msg = '';
    try {
      other.loadStateDict(bad);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('Missing key(s): "fc.bias"');
    expect(msg).toContain('Unexpected key(s): "fc.extra"');
    expect(msg).toContain('size mismatch for head.scale: copying a tensor of shape [3], the shape in this model is [4]');
    expect(Array.from(await other.head.scale.data())).toEqual(before);
  });

  it('loadStateDict without strict reports missing and unexpected keys but still rejects size mismatches', async () => {
    const m = new Affine(2);
    const res = m.loadStateDict({ scale: tensor([7, 8]), bogus: tensor([1]) }, { strict: false });
    expect(res).toEqual({ missingKeys: ['shift'], unexpectedKeys: ['bogus'] });
    expect(Array.from(await m.scale.data())).toEqual([7, 8]);
    expect(Array.from(await m.shift.data())).toEqual([0.5, 0.5]);
    expect(() => m.loadStateDict({ scale: tensor([1, 2, 3]) }, { strict: false })).toThrow(/size mismatch for scale/);
  });

  it('replacing a child by assignment replaces its parameters and state-dict entries', () => {
    const net = new Net();
    const oldWeight = net.fc.weight;
    const n = net.fc.inFeatures;
    net.fc = new Linear(n, 14);
    expect(net.stateDict().get('fc.weight')!.shape).toEqual([14, 4]);
    expect([...net.parameters()].includes(oldWeight)).toBe(false);
    expect(net.numParameters()).toBe(108 + 4 + 8 + 8 + 14 * 4 + 14);
    const list = new ModuleList([new ReLU(), new Linear(2, 2)]);
    list.set(1, new Linear(2, 3));
    expect(list.stateDict().get('1.weight')!.shape).toEqual([3, 2]);
    expect(() => list.get(2)).toThrow(/index 2 out of range/);
  });

  it('summary lists layers, output shapes and parameter counts without side effects', () => {
    const model = new Sequential(new Affine(3), new Sequential(new Affine(3), new Identity()));
    const table = model.summary([2, 3]);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/Layer\s+Type\s+Output shape\s+Params/);
    expect(lines.find((l) => l.startsWith('0 '))).toMatch(/^0\s+Affine\s+\[2,3\]\s+6$/);
    expect(lines.find((l) => l.startsWith('1.0 '))).toMatch(/Affine\s+\[2,3\]\s+6$/);
    expect(lines.find((l) => l.startsWith('1.1 '))).toMatch(/Identity\s+\[2,3\]\s+0$/);
    expect(table).toContain('Total params: 12');
    expect(model.training).toBe(true);
    expect(Object.keys(model.get(0))).not.toContain('forward');
  });

  it('rejects bad layer arguments with clear errors', () => {
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow(/divisible by groups/);
    expect(() => new Conv2d(3, 4, 3, { stride: 2, padding: 'same' })).toThrow(/'same'.*strided/);
    expect(() => new Linear(0, 3)).toThrow(/positive integers/);
    expect(() => new BatchNorm2d(4, { momentum: 2 })).toThrow(/momentum/);
  });
});
