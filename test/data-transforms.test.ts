import { describe, it, expect } from 'vitest';
import {
  ColorJitter,
  Compose,
  Grayscale,
  Normalize,
  RandomAffine,
  RandomHorizontalFlip,
  Resize,
  Rng,
  ToTensor,
  deriveSeed,
  evalTransform,
  functional as F,
  trainTransform,
  transformFromJSON,
  type Image,
} from '../src/data/index.js';

const img = (channels: number, height: number, width: number, values: number[]): Image => ({
  data: Float32Array.from(values),
  channels,
  height,
  width,
});

function expectClose(actual: Image, expected: number[], digits = 6) {
  expect(actual.data.length).toBe(expected.length);
  actual.data.forEach((v, i) => expect(v, `element ${i}`).toBeCloseTo(expected[i], digits));
}

describe('Rng', () => {
  it('is deterministic per seed, uniform in [0, 1), and shuffles to permutations', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / xs.length - 0.5)).toBeLessThan(0.05);
    expect(new Rng(43).next()).not.toBe(new Rng(42).next());
    const perm = new Rng(1).shuffle(Array.from({ length: 20 }, (_, i) => i));
    expect([...perm].sort((p, q) => p - q)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const ints = Array.from({ length: 200 }, () => a.int(3));
    expect(new Set(ints)).toEqual(new Set([0, 1, 2]));
    const normals = Array.from({ length: 4000 }, () => a.normal());
    const mean = normals.reduce((s, x) => s + x, 0) / normals.length;
    const variance = normals.reduce((s, x) => s + (x - mean) ** 2, 0) / normals.length;
    expect(Math.abs(mean)).toBeLessThan(0.1);
    expect(Math.abs(variance - 1)).toBeLessThan(0.1);
    expect(() => new Rng(0.5)).toThrow(/integer/);
  });

  it('derives distinct seeds from (seed, epoch, index) tuples', () => {
    const seeds = new Set<number>();
    for (let e = 0; e < 10; e++) for (let i = 0; i < 100; i++) seeds.add(deriveSeed(7, e, i));
    expect(seeds.size).toBe(1000);
    expect(deriveSeed(7, 1, 2)).toBe(deriveSeed(7, 1, 2));
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(2, 1));
    expect(deriveSeed(2 ** 40)).not.toBe(deriveSeed(0));
  });
});

describe('Resize', () => {
  it('upsamples 2x3 to 4x6 with half-pixel centres (align_corners=False)', () => {
    // Source x for output x: (x + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25, 1.75, 2.25 (clamped).
    const out = new Resize([4, 6]).apply(img(1, 2, 3, [0, 0.4, 0.8, 0.2, 0.6, 1.0]));
    expect([out.channels, out.height, out.width]).toEqual([1, 4, 6]);
    expectClose(out, [
      0, 0.1, 0.3, 0.5, 0.7, 0.8,
      0.05, 0.15, 0.35, 0.55, 0.75, 0.85,
      0.15, 0.25, 0.45, 0.65, 0.85, 0.95,
      0.2, 0.3, 0.5, 0.7, 0.9, 1.0,
    ]);
  });

  it('halves 4x4 to 2x2 by averaging each 2x2 block (no antialias needed at x2)', () => {
    const values = Array.from({ length: 16 }, (_, i) => i / 15);
    const out = new Resize([2, 2]).apply(img(1, 4, 4, values));
    const block = (r: number, c: number) => (values[r * 4 + c] + values[r * 4 + c + 1] + values[r * 4 + c + 4] + values[r * 4 + c + 5]) / 4;
    expectClose(out, [block(0, 0), block(0, 2), block(2, 0), block(2, 2)]);
  });

  it('resizes each channel separately and rejects bad sizes', () => {
    const out = new Resize([1, 2]).apply(img(2, 1, 1, [0.25, 0.75]));
    expectClose(out, [0.25, 0.25, 0.75, 0.75]);
    expect(() => new Resize([0, 4])).toThrow(/positive integers/);
    expect(() => F.resize(img(1, 2, 2, [0, 0, 0]), [1, 1])).toThrow(/3 values, shape 1x2x2 needs 4/);
  });
});

describe('Grayscale, flip, ToTensor, Normalize', () => {
  it('Grayscale uses the 601-2 luma weights and replicates channels', () => {
    const rgb = img(3, 1, 2, [1, 0, 0.5, 0, 0.25, 1]);
    const g = 0.299 * 1 + 0.587 * 0.5 + 0.114 * 0.25;
    expectClose(new Grayscale(1).apply(rgb), [g, 0.114]);
    expectClose(new Grayscale(3).apply(rgb), [g, 0.114, g, 0.114, g, 0.114]);
    expectClose(new Grayscale(3).apply(img(1, 1, 2, [0.2, 0.4])), [0.2, 0.4, 0.2, 0.4, 0.2, 0.4]);
    expect(() => new Grayscale(1).apply(img(2, 1, 1, [0, 0]))).toThrow(/1 or 3 channels, got 2/);
  });

  it('RandomHorizontalFlip mirrors rows with probability p', () => {
    const x = img(2, 2, 3, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expectClose(new RandomHorizontalFlip(1).apply(x, new Rng(0)), [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
    expect(new RandomHorizontalFlip(0).apply(x, new Rng(0))).toBe(x);
    const rng = new Rng(5);
    let flips = 0;
    for (let i = 0; i < 400; i++) if (new RandomHorizontalFlip(0.5).apply(x, rng) !== x) flips++;
    expect(flips).toBeGreaterThan(150);
    expect(flips).toBeLessThan(250);
  });

  it('ToTensor is the identity and Normalize subtracts mean and divides by std per channel', () => {
    const x = img(2, 1, 2, [0, 1, 0.5, 0.25]);
    expect(new ToTensor().apply(x)).toBe(x);
    expectClose(new Normalize([0.5, 0.25], [0.25, 0.5]).apply(x), [-2, 2, 0.5, 0]);
    expect(() => new Normalize([0.5, 0.5, 0.5], [1, 1, 1]).apply(x)).toThrow(/2 channels but mean has 3/);
    expect(() => new Normalize([0.5], [1, 1])).toThrow(/equally long/);
  });
});

describe('colour adjustments', () => {
  const grey4 = img(1, 2, 2, [0.2, 0.4, 0.6, 0.8]);

  it('brightness multiplies and clamps', () => {
    expectClose(F.adjustBrightness(grey4, 1.5), [0.3, 0.6, 0.9, 1]);
    expectClose(F.adjustBrightness(grey4, 0), [0, 0, 0, 0]);
  });

  it('contrast blends with the mean grey level and clamps', () => {
    expectClose(F.adjustContrast(grey4, 0.5), [0.35, 0.45, 0.55, 0.65]); // 0.5 x + 0.5 * 0.5
    expectClose(F.adjustContrast(grey4, 2), [0, 0.3, 0.7, 1]); // 2 x - 0.5
    // On RGB the mean is taken over the luma: pixels (1,0,0) and (0,0,1) -> mean (0.299 + 0.114) / 2.
    const m = (0.299 + 0.114) / 2;
    expectClose(F.adjustContrast(img(3, 1, 2, [1, 0, 0, 0, 0, 1]), 0), [m, m, m, m, m, m]);
  });

  it('saturation blends with per-pixel grey; no-op on 1 channel', () => {
    expectClose(F.adjustSaturation(img(3, 1, 1, [1, 0, 0]), 0), [0.299, 0.299, 0.299]);
    expectClose(F.adjustSaturation(img(3, 1, 1, [1, 0, 0]), 0.5), [0.5 + 0.1495, 0.1495, 0.1495]);
    expect(F.adjustSaturation(grey4, 0.3)).toBe(grey4);
  });

  it('hue rotates in HSV', () => {
    const red = img(3, 1, 1, [1, 0, 0]);
    expectClose(F.adjustHue(red, 1 / 3), [0, 1, 0]);
    expectClose(F.adjustHue(red, -1 / 3), [0, 0, 1]);
    expectClose(F.adjustHue(img(3, 1, 1, [1, 0.5, 0]), 1 / 12), [1, 1, 0]); // 30 deg orange -> 60 deg yellow
    expectClose(F.adjustHue(img(3, 1, 1, [0.2, 0.4, 0.8]), 0.5), [0.8, 0.6, 0.2]); // half turn: complement within [min, max]
    expect(F.adjustHue(grey4, 0.2)).toBe(grey4);
    expect(() => F.adjustHue(red, 0.7)).toThrow(/\[-0.5, 0.5\]/);
  });

  it('ColorJitter applies given factors in the given order', () => {
    const base = { saturation: null, hue: null };
    // brightness 2 then contrast 0: [0.4, 0.8, 1, 1] -> its mean 0.8; the other order: mean 0.5 -> 1.
    expectClose(ColorJitter.applyWithParams(grey4, { ...base, order: [0, 1, 2, 3], brightness: 2, contrast: 0 }), [0.8, 0.8, 0.8, 0.8]);
    expectClose(ColorJitter.applyWithParams(grey4, { ...base, order: [1, 0, 2, 3], brightness: 2, contrast: 0 }), [1, 1, 1, 1]);
    // Saturation and hue leave grey RGB unchanged.
    const grey3 = new Grayscale(3).apply(grey4);
    const same = ColorJitter.applyWithParams(grey3, { order: [2, 3, 0, 1], brightness: null, contrast: null, saturation: 0.2, hue: 0.3 });
    expectClose(same, Array.from(grey3.data));
  });

  it('ColorJitter draws torchvision-style ranges and a random order', () => {
    const cj = new ColorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 });
    const orders = new Set<string>();
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const p = cj.sampleParams(rng);
      orders.add(p.order.join(''));
      expect([...p.order].sort()).toEqual([0, 1, 2, 3]);
      for (const f of [p.brightness, p.contrast, p.saturation]) {
        expect(f).toBeGreaterThanOrEqual(0.6);
        expect(f).toBeLessThanOrEqual(1.4);
      }
      expect(Math.abs(p.hue as number)).toBeLessThanOrEqual(0.1);
    }
    expect(orders.size).toBeGreaterThan(12);
    // apply() is sampleParams + applyWithParams on the same stream.
    const rgb = img(3, 1, 2, [0.9, 0.1, 0.3, 0.7, 0.5, 0.2]);
    const direct = cj.apply(rgb, new Rng(9));
    expect(Array.from(direct.data)).toEqual(Array.from(ColorJitter.applyWithParams(rgb, cj.sampleParams(new Rng(9))).data));
    expect(new ColorJitter({ brightness: 2 }).brightness).toEqual([0, 3]); // lower end clamped at 0
    expect(new ColorJitter({ brightness: 0 }).sampleParams(new Rng(0)).brightness).toBeNull();
    expect(() => new ColorJitter({ hue: 0.6 })).toThrow(/hue range/);
  });
});

describe('affine', () => {
  const none = { angle: 0, translate: [0, 0] as [number, number], scale: 1 };

  it('rotates clockwise about the centre (F.affine convention)', () => {
    const x = img(1, 3, 3, [0, 1, 0, 0, 0, 0, 0, 0, 0]); // top middle
    expectClose(F.affine(x, { ...none, angle: 90 }), [0, 0, 0, 0, 0, 1, 0, 0, 0]); // -> right middle
    expectClose(F.affine(x, { ...none, angle: -90 }), [0, 0, 0, 1, 0, 0, 0, 0, 0]); // -> left middle
  });

  it('translates in whole pixels with fill 0 and scales about the centre bilinearly', () => {
    const x = img(1, 2, 3, [1, 2, 3, 4, 5, 6]);
    expectClose(F.affine(x, { ...none, translate: [1, 0] }), [0, 1, 2, 0, 4, 5]);
    expectClose(F.affine(x, { ...none, translate: [0, -1] }), [4, 5, 6, 0, 0, 0]);
    // 1x5 row, scale 2: output x reads input 2 + (x - 2) / 2.
    expectClose(F.affine(img(1, 1, 5, [0, 0.25, 0.5, 0.75, 1]), { ...none, scale: 2 }), [0.25, 0.375, 0.5, 0.625, 0.75]);
    // scale 0.5 reads beyond the border: zeros blend in.
    expectClose(F.affine(img(1, 1, 3, [1, 1, 1]), { ...none, scale: 0.5 }), [0, 1, 0]);
  });

  it('RandomAffine draws parameters in range and is seeded', () => {
    const t = new RandomAffine({ degrees: 10, translate: [0.1, 0.2], scale: [0.9, 1.1] });
    const rng = new Rng(1);
    for (let i = 0; i < 100; i++) {
      const p = t.sampleParams(rng, 20, 40);
      expect(Math.abs(p.angle)).toBeLessThanOrEqual(10);
      expect(Number.isInteger(p.translate[0]) && Math.abs(p.translate[0]) <= 4).toBe(true);
      expect(Number.isInteger(p.translate[1]) && Math.abs(p.translate[1]) <= 4).toBe(true);
      expect(p.scale).toBeGreaterThanOrEqual(0.9);
      expect(p.scale).toBeLessThanOrEqual(1.1);
    }
    const x = img(1, 4, 4, Array.from({ length: 16 }, (_, i) => i / 16));
    expect(Array.from(t.apply(x, new Rng(2)).data)).toEqual(Array.from(t.apply(x, new Rng(2)).data));
    expect(() => new RandomAffine({ degrees: 5, scale: [0, 1] })).toThrow(/scale/);
  });
});

describe('pipelines', () => {
  it('trainTransform/evalTransform build the seed project pipelines', () => {
    expect(trainTransform(8).toJSON()).toEqual({
      name: 'Compose',
      transforms: [
        { name: 'Resize', size: [8, 8] },
        { name: 'Grayscale', numOutputChannels: 3 },
        { name: 'ColorJitter', brightness: [0.6, 1.4], contrast: [0.6, 1.4], saturation: [0.6, 1.4], hue: [-0.1, 0.1] },
        { name: 'ToTensor' },
        { name: 'Normalize', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      ],
    });
    const out = evalTransform(2).apply(img(1, 4, 4, new Array(16).fill(0.5)), new Rng(0));
    expect([out.channels, out.height, out.width]).toEqual([3, 2, 2]);
    expectClose(out, [0, 0, 0, 0].map(() => (0.5 - 0.485) / 0.229).concat([0, 0, 0, 0].map(() => (0.5 - 0.456) / 0.224), [0, 0, 0, 0].map(() => (0.5 - 0.406) / 0.225)), 5);
  });

  it('transformFromJSON rebuilds pipelines that give identical results', () => {
    const t = new Compose([
      new Resize([5, 6]),
      new Grayscale(3),
      new ColorJitter({ brightness: 0.3, contrast: [0.5, 1.5], hue: 0.05 }),
      new RandomHorizontalFlip(0.5),
      new RandomAffine({ degrees: [-5, 15], translate: [0.1, 0.1] }),
      new ToTensor(),
      new Normalize([0.1, 0.2, 0.3], [0.5, 0.6, 0.7]),
    ]);
    const spec = JSON.parse(JSON.stringify(t.toJSON()));
    expect(transformFromJSON(spec).toJSON()).toEqual(t.toJSON());
    const x = img(1, 7, 9, Array.from({ length: 63 }, (_, i) => (i * 37) % 64 / 63));
    for (const seed of [1, 2, 3]) {
      expect(Array.from(transformFromJSON(spec).apply(x, new Rng(seed)).data)).toEqual(Array.from(t.apply(x, new Rng(seed)).data));
    }
    expect(() => transformFromJSON({ name: 'Blur' } as never)).toThrow(/unknown transform "Blur"/);
  });
});
