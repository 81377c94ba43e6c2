import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as src from '../src/data/index.js';
import type { Batch, NihRecord, TransformSpec } from '../src/data/index.js';

type DataModule = typeof src;

/** The compiled module: worker threads need built JS (npm test builds before running vitest). */
async function loadDist(): Promise<DataModule> {
  const url = new URL('../dist/data/index.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) throw new Error(`${fileURLToPath(url)} is missing: run npm run build first`);
  return (await import(url.href)) as DataModule;
}

const FINDINGS_CYCLE = [['Mass'], ['No Finding'], ['Effusion', 'Hernia'], ['Atelectasis']];
let dir: string;
let records: NihRecord[];
let paths: Map<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'loader-'));
  records = [];
  for (let i = 0; i < 10; i++) {
    const imageIndex = `${String(Math.floor(i / 2) + 1).padStart(8, '0')}_00${i % 2}.png`;
    records.push({ imageIndex, labels: FINDINGS_CYCLE[i % 4], followUp: i % 2, patientId: Math.floor(i / 2) + 1, age: 50, sex: 'M', viewPosition: 'PA' });
    const pixels = Float32Array.from({ length: 64 }, (_, p) => ((p * (i + 3)) % 17) / 16);
    writeFileSync(join(dir, imageIndex), src.encodePng({ data: pixels, channels: 1, height: 8, width: 8 }));
  }
  paths = src.findImages(dir);
});

/** A pipeline with every random transform, as plain data so both builds can construct it. */
const spec: TransformSpec = {
  name: 'Compose',
  transforms: [
    { name: 'Resize', size: [6, 6] },
    { name: 'Grayscale', numOutputChannels: 3 },
    { name: 'ColorJitter', brightness: [0.6, 1.4], contrast: [0.6, 1.4], saturation: [0.6, 1.4], hue: [-0.1, 0.1] },
    { name: 'RandomHorizontalFlip', p: 0.5 },
    { name: 'RandomAffine', degrees: [-10, 10], translate: [0.1, 0.1], scale: [0.9, 1.1] },
    { name: 'Normalize', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  ],
};

async function collect(loader: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

/** Per-name images and labels of an epoch, to compare loaders whatever their order. */
function byName(batches: Batch[]): Map<string, [number[], number[]]> {
  const out = new Map<string, [number[], number[]]>();
  for (const b of batches) {
    const [, c, h, w] = b.shape;
    const k = b.labelShape[1];
    b.names.forEach((name, n) => {
      out.set(name, [Array.from(b.images.subarray(n * c * h * w, (n + 1) * c * h * w)), Array.from(b.labels.subarray(n * k, (n + 1) * k))]);
    });
  }
  return out;
}

describe('DataLoader (in-thread)', () => {
  it('batches in order with the right shapes, labels and length; dropLast drops the tail', async () => {
    const ds = new src.NihDataset(records, paths, { transform: src.evalTransform(4) });
    const loader = new src.DataLoader(ds, { batchSize: 4 });
    expect(loader.length).toBe(3);
    const batches = await collect(loader);
    expect(batches.map((b) => b.shape)).toEqual([[4, 3, 4, 4], [4, 3, 4, 4], [2, 3, 4, 4]]);
    expect(batches.map((b) => b.labelShape)).toEqual([[4, 14], [4, 14], [2, 14]]);
    expect(batches.flatMap((b) => b.names)).toEqual(records.map((r) => r.imageIndex));
    const first = batches[0];
    expect(Array.from(first.labels.subarray(2 * 14, 3 * 14))).toEqual(Array.from(src.encodeLabels(records[2].labels)));
    // Item 1 through the same transform by hand.
    const expected = src.evalTransform(4).apply(src.readImage(paths.get(records[1].imageIndex) as string), new src.Rng(0));
    expect(Array.from(first.images.subarray(48, 96))).toEqual(Array.from(expected.data));

    const dropping = new src.DataLoader(ds, { batchSize: 4, dropLast: true });
    expect(dropping.length).toBe(2);
    expect((await collect(dropping)).map((b) => b.shape[0])).toEqual([4, 4]);
    expect(new src.DataLoader(ds, { batchSize: 5, dropLast: true }).length).toBe(2);
    expect(() => new src.DataLoader(ds, { batchSize: 0 })).toThrow(/batchSize/);
    expect(() => new src.DataLoader(ds, { batchSize: 2, prefetch: 2 })).toThrow(/needs numWorkers > 0/);
  });

  it('is deterministic per (seed, epoch), reshuffles per epoch, and augments per item, not per position', async () => {
    const make = (seed: number, shuffle = true) =>
      new src.DataLoader(new src.NihDataset(records, paths, { transform: src.transformFromJSON(spec) }), { batchSize: 3, shuffle, seed });
    const a = make(11);
    const b = make(11);
    const a0 = await collect(a);
    const a1 = await collect(a);
    expect(await collect(b)).toEqual(a0);
    expect(await collect(b)).toEqual(a1);
    const order0 = a0.flatMap((x) => x.names);
    expect([...order0].sort()).toEqual(records.map((r) => r.imageIndex).sort());
    expect(a1.flatMap((x) => x.names)).not.toEqual(order0);
    a.setEpoch(0);
    expect(await collect(a)).toEqual(a0);
    expect((await collect(make(12))).flatMap((x) => x.names)).not.toEqual(order0);
    // Unshuffled, same seed and epoch: each item gets the same augmentation as in the shuffled pass.
    expect(byName(await collect(make(11, false)))).toEqual(byName(a0));
    // A different epoch draws different augmentations.
    expect(byName(a1).get(order0[0])).not.toEqual(byName(a0).get(order0[0]));
  });

  it("skips unreadable images with onUnreadable: 'skip' and names them otherwise", async () => {
    const bad: NihRecord[] = [
      ...records.slice(0, 3),
      { ...records[0], imageIndex: 'corrupt.png' },
      { ...records[0], imageIndex: 'absent.png' },
    ];
    writeFileSync(join(dir, 'corrupt.png'), src.encodePng({ data: new Float32Array(4), channels: 1, height: 2, width: 2 }).subarray(0, 30));
    const badPaths = new Map([...paths, ['corrupt.png', join(dir, 'corrupt.png')]]);
    const ds = new src.NihDataset(bad, badPaths, { transform: src.evalTransform(4), onUnreadable: 'skip' });
    const loader = new src.DataLoader(ds, { batchSize: 2 });
    const batches = await collect(loader);
    expect(batches.flatMap((b) => b.names)).toEqual(records.slice(0, 3).map((r) => r.imageIndex));
    expect(batches.map((b) => b.shape[0])).toEqual([2, 1]); // [r0, r1], [r2, corrupt], [absent] -> empty batch dropped
    expect(loader.skipped).toBe(2);
    expect(ds.skipped).toBe(2);

    const strict = new src.DataLoader(new src.NihDataset(bad, badPaths, { transform: src.evalTransform(4) }), { batchSize: 2 });
    await expect(collect(strict)).rejects.toThrow(/item 3 \(corrupt\.png\): corrupt PNG .*corrupt\.png: truncated/);
    const absent = new src.NihDataset(bad.slice(4), badPaths, {});
    expect(() => absent.getItem(0, new src.Rng(0))).toThrow(/image file absent\.png not found/);
    expect(() => new src.NihDataset([{ ...records[0], labels: ['Flu'] }], paths)).toThrow(/image 00000001_000\.png: unknown label 'Flu'/);
  });

  it('caches the resized image and reads it back', () => {
    const cacheDir = join(dir, 'cache');
    const transform = src.transformFromJSON(spec);
    const cached = new src.NihDataset(records, paths, { transform, cacheDir });
    const plain = new src.NihDataset(records, paths, { transform });
    const first = cached.getItem(4, new src.Rng(5));
    expect(first).toEqual(plain.getItem(4, new src.Rng(5)));
    const file = join(cacheDir, `${records[4].imageIndex}.6x6.f32`);
    expect(readdirSync(cacheDir)).toEqual([`${records[4].imageIndex}.6x6.f32`]); // no temp file left behind
    expect(cached.getItem(4, new src.Rng(5))).toEqual(first);
    // The cache is what gets read: a constant image there gives a constant result before jitter.
    writeFileSync(file, new Uint8Array(new Float32Array(36).fill(0.25).buffer));
    const fromCache = new src.NihDataset(records, paths, { transform: new src.Resize([6, 6]), cacheDir }).getItem(4, new src.Rng(0));
    expect(Array.from(fromCache?.image.data ?? [])).toEqual(new Array(36).fill(0.25));
    expect(() => new src.NihDataset(records, paths, { transform: new src.Grayscale(3), cacheDir })).toThrow(/starts with Resize/);
  });

  it('refuses numWorkers > 0 when running from the TypeScript sources', () => {
    const ds = new src.NihDataset(records, paths, { transform: src.evalTransform(4) });
    expect(() => new src.DataLoader(ds, { batchSize: 2, numWorkers: 2 })).toThrow(/compiled worker script .*build first/);
  });
});

describe('DataLoader (worker threads, built dist/)', () => {
  it('gives the same batches with 0 and 2 workers, epoch after epoch', async () => {
    const dist = await loadDist();
    const make = (numWorkers: number) =>
      new dist.DataLoader(new dist.NihDataset(records, paths, { transform: dist.transformFromJSON(spec) }), {
        batchSize: 3,
        shuffle: true,
        seed: 5,
        numWorkers,
        prefetch: numWorkers > 0 ? 3 : undefined,
      });
    const inThread = make(0);
    const workers = make(2);
    for (let epoch = 0; epoch < 2; epoch++) {
      const expected = await collect(inThread);
      expect(await collect(workers)).toEqual(expected);
    }
    // The sources and the build agree too.
    const fromSrc = new src.DataLoader(new src.NihDataset(records, paths, { transform: src.transformFromJSON(spec) }), { batchSize: 3, shuffle: true, seed: 5 });
    fromSrc.setEpoch(1);
    workers.setEpoch(1);
    expect(await collect(workers)).toEqual(await collect(fromSrc));
  });

  it('stops workers on break, counts skips, and re-throws worker errors with the item name', async () => {
    const dist = await loadDist();
    const ds = new dist.NihDataset(records, paths, { transform: dist.evalTransform(4) });
    const loader = new dist.DataLoader(ds, { batchSize: 2, numWorkers: 2 });
    for await (const b of loader) {
      expect(b.shape).toEqual([2, 3, 4, 4]);
      break;
    }
    expect((await collect(loader)).length).toBe(5);

    const withBad = [...records.slice(0, 4), { ...records[0], imageIndex: 'corrupt.png' }];
    const badPaths = new Map([...paths, ['corrupt.png', join(dir, 'corrupt.png')]]);
    writeFileSync(join(dir, 'corrupt.png'), 'not a png');
    const skipping = new dist.DataLoader(new dist.NihDataset(withBad, badPaths, { onUnreadable: 'skip' }), { batchSize: 2, numWorkers: 2 });
    expect((await collect(skipping)).flatMap((b) => b.names)).toEqual(records.slice(0, 4).map((r) => r.imageIndex));
    expect(skipping.skipped).toBe(1);

    const failing = new dist.DataLoader(new dist.NihDataset(withBad, badPaths), { batchSize: 2, numWorkers: 2 });
    await expect(collect(failing)).rejects.toThrow(/DataLoader worker 0: item 4 \(corrupt\.png\): corrupt PNG .*corrupt\.png: not a PNG/);
  });
});
