import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, tensor, mapInPlace } from '@lib/nn';
import { loadSafetensors, saveSafetensors, safetensorsMetadata } from '../src/nn/safetensors.js';
import { BatchNorm2d, Conv2d, Linear, Sequential } from '../src/nn/layers/index.js';

const dir = mkdtempSync(join(tmpdir(), 'nn-safetensors-'));

/** A minimal writer, independent of the library's: header length (u64 LE), JSON header, raw bytes. */
function writeFile(path: string, entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[], pad = 0): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, ...entries.map((e) => Buffer.from(e.bytes))]));
}

const u16 = (...v: number[]) => {
  const b = Buffer.alloc(2 * v.length);
  v.forEach((x, i) => b.writeUInt16LE(x, 2 * i));
  return b;
};

describe('safetensors', () => {
  beforeAll(async () => { await init(); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips a state dict, num_batches_tracked as I64, and loads it back into a model', async () => {
    const make = () => new Sequential(new Conv2d(2, 3, 3, { bias: false }), new BatchNorm2d(3), new Linear(3, 2));
    const a = make();
    const bn = a.get(1) as BatchNorm2d;
    mapInPlace('set', bn.numBatchesTracked!, () => '7.0', []);
    mapInPlace('set', bn.runningVar!, (t) => `${t} * 2.5`, []);
    const path = join(dir, 'model.safetensors');
    await saveSafetensors(path, a.stateDict(), { note: 'hello' });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);

    const raw = readFileSync(path);
    const n = Number(raw.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(raw.subarray(8, 8 + n).toString());
    expect(header['1.num_batches_tracked']).toEqual({ dtype: 'I64', shape: [], data_offsets: expect.any(Array) });
    expect(header['0.weight'].dtype).toBe('F32');
    expect(header['0.weight'].shape).toEqual([3, 2, 3, 3]);
    const [b0] = header['1.num_batches_tracked'].data_offsets;
    expect(raw.readBigInt64LE(8 + n + b0)).toBe(7n);
    expect(await safetensorsMetadata(path)).toEqual({ note: 'hello' });

    const loaded = await loadSafetensors(path);
    const sd = a.stateDict();
    expect([...loaded.keys()]).toEqual([...sd.keys()]);
    for (const [k, t] of sd) {
      expect(loaded.get(k)!.shape).toEqual(t.shape);
      expect(Array.from(await loaded.get(k)!.data())).toEqual(Array.from(await t.data()));
    }
    const b = make();
    b.loadStateDict(loaded);
    expect(await (b.get(1) as BatchNorm2d).numBatchesTracked!.item()).toBe(7);
    expect(Array.from(await (b.get(2) as Linear).weight.data())).toEqual(Array.from(await (a.get(2) as Linear).weight.data()));
  });

  it('reads F32, F16, BF16 and I64 tensors written by another writer', async () => {
    const f32 = new Float32Array([1.25, -3, 1e-8, 6]);
    const path = join(dir, 'foreign.safetensors');
    writeFile(path, [
      { name: 'a.f32', dtype: 'F32', shape: [2, 2], bytes: new Uint8Array(f32.buffer) },
      // 1.5, -2, 2^-14 (smallest normal), 2^-24 (smallest subnormal), 65504 (largest), +inf
      { name: 'b.f16', dtype: 'F16', shape: [3, 2], bytes: u16(0x3e00, 0xc000, 0x0400, 0x0001, 0x7bff, 0x7c00) },
      // 1, -3.5, 0.15625 (the top halves of their float32 bit patterns)
      { name: 'c.bf16', dtype: 'BF16', shape: [3], bytes: u16(0x3f80, 0xc060, 0x3e20) },
      { name: 'bn.num_batches_tracked', dtype: 'I64', shape: [], bytes: new Uint8Array(new BigInt64Array([123456n]).buffer) },
    ], 3);
    const t = await loadSafetensors(path);
    expect([...t.keys()]).toEqual(['a.f32', 'b.f16', 'c.bf16', 'bn.num_batches_tracked']);
    expect(t.get('a.f32')!.shape).toEqual([2, 2]);
    expect(Array.from(await t.get('a.f32')!.data())).toEqual(Array.from(f32));
    expect(t.get('b.f16')!.shape).toEqual([3, 2]);
    expect(Array.from(await t.get('b.f16')!.data())).toEqual([1.5, -2, 2 ** -14, 2 ** -24, 65504, Infinity]);
    expect(Array.from(await t.get('c.bf16')!.data())).toEqual([1, -3.5, 0.15625]);
    expect(t.get('bn.num_batches_tracked')!.shape).toEqual([]);
    expect(await t.get('bn.num_batches_tracked')!.item()).toBe(123456);
  });

  it('names the problem in a truncated or malformed file', async () => {
    const good = join(dir, 'good.safetensors');
    writeFile(good, [{ name: 'w', dtype: 'F32', shape: [4], bytes: new Uint8Array(16) }]);
    const bytes = readFileSync(good);
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
    await expect(loadSafetensors(cut)).rejects.toThrow(/cut\.safetensors: truncated safetensors file: tensor 'w'/);
    writeFileSync(cut, bytes.subarray(0, 20));
    await expect(loadSafetensors(cut)).rejects.toThrow(/truncated safetensors file: header of \d+ bytes/);
    await expect(safetensorsMetadata(cut)).rejects.toThrow(/truncated safetensors file: header of \d+ bytes/);
    writeFileSync(cut, bytes.subarray(0, 5));
    await expect(loadSafetensors(cut)).rejects.toThrow(/shorter than the 8-byte header length/);
    await expect(safetensorsMetadata(cut)).rejects.toThrow(/shorter than the 8-byte header length/);

    const bad = join(dir, 'bad.safetensors');
    const junk = Buffer.from('{"w": nope}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(junk.length));
    writeFileSync(bad, Buffer.concat([len, junk]));
    await expect(loadSafetensors(bad)).rejects.toThrow(/bad safetensors header \(not JSON/);
    writeFile(bad, [{ name: 'q', dtype: 'I8', shape: [2], bytes: new Uint8Array(2) }]);
    await expect(loadSafetensors(bad)).rejects.toThrow(/entry 'q': unsupported dtype "I8"/);
    writeFile(bad, [{ name: 'q', dtype: 'F32', shape: [3], bytes: new Uint8Array(8) }]);
    await expect(loadSafetensors(bad)).rejects.toThrow(/entry 'q': data_offsets \[0,8\] span 8 bytes, shape \[3\] of F32 needs 12/);
    await expect(saveSafetensors(join(dir, 'x.safetensors'), { a: tensor([1]) }, { n: 3 as unknown as string })).rejects.toThrow(/metadata value for 'n'/);
  });
});
