import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePng, encodePng, readImage } from '../src/data/index.js';
import { buildPng, type RawPng } from './fixtures/data/png-builder.js';

/** PIL's convert('L') value of an RGB sample, written as the plain float formula. */
const luma = (r: number, g: number, b: number) => Math.round((r * 299 + g * 587 + b * 114) / 1000);

function expectGrey(png: Omit<RawPng, 'width' | 'height'> & { width?: number; height?: number }, expected: number[]) {
  const img = decodePng(buildPng({ width: expected.length, height: 1, ...png }), 'test.png');
  expect([img.channels, img.height, img.width]).toEqual([1, png.height ?? 1, png.width ?? expected.length]);
  expect(Array.from(img.data)).toEqual(expected.map((v) => Math.fround(v)));
}

describe('decodePng', () => {
  it('reads 8- and 16-bit grey, scaled by 1/255 and 1/65535', () => {
    expectGrey({ depth: 8, colorType: 0, samples: [0, 128, 255] }, [0, 128 / 255, 1]);
    expectGrey({ depth: 16, colorType: 0, samples: [0, 1000, 65535] }, [0, 1000 / 65535, 1]);
  });

  it('reads 1-, 2- and 4-bit grey scaled to [0, 1]', () => {
    expectGrey({ depth: 1, colorType: 0, samples: [0, 1, 1, 0, 1, 0, 0, 0, 1] }, [0, 1, 1, 0, 1, 0, 0, 0, 1]);
    expectGrey({ depth: 2, colorType: 0, samples: [0, 1, 2, 3, 2] }, [0, 1 / 3, 2 / 3, 1, 2 / 3]);
    expectGrey({ depth: 4, colorType: 0, samples: [15, 7, 0] }, [1, 7 / 15, 0]);
  });

  it('ignores alpha in grey+alpha and RGBA', () => {
    expectGrey({ depth: 8, colorType: 4, samples: [10, 0, 200, 255] }, [10 / 255, 200 / 255]);
    expectGrey({ depth: 16, colorType: 4, samples: [300, 0, 65535, 7] }, [300 / 65535, 1]);
    expectGrey({ depth: 8, colorType: 6, samples: [255, 0, 0, 0, 10, 20, 30, 128] }, [luma(255, 0, 0) / 255, luma(10, 20, 30) / 255]);
    expectGrey({ depth: 16, colorType: 6, samples: [65535, 0, 0, 0, 0, 0, 65535, 1] }, [luma(65535, 0, 0) / 65535, luma(0, 0, 65535) / 65535]);
  });

  it('converts RGB with the ITU-R 601-2 luma rounded as PIL does', () => {
    const rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 100, 50];
    const expected = [0, 3, 6, 9, 12].map((i) => luma(rgb[i], rgb[i + 1], rgb[i + 2]) / 255);
    expect(expected.slice(0, 3).map((v) => Math.round(v * 255))).toEqual([76, 150, 29]); // 76.245, 149.685, 29.07
    expectGrey({ depth: 8, colorType: 2, samples: rgb }, expected);
    expectGrey({ depth: 16, colorType: 2, samples: [65535, 0, 0, 1000, 2000, 3000] }, [luma(65535, 0, 0) / 65535, luma(1000, 2000, 3000) / 65535]);
  });

  it('reads 8-bit and 2-bit palette images through the palette colours', () => {
    const palette: [number, number, number][] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [40, 40, 40]];
    const expected = [2, 1, 0, 3].map((k) => luma(...palette[k]) / 255);
    expectGrey({ depth: 8, colorType: 3, palette, samples: [2, 1, 0, 3] }, expected);
    expectGrey({ depth: 2, colorType: 3, palette, samples: [2, 1, 0, 3] }, expected);
    // Transparency of palette entries is ignored too.
    expectGrey({ depth: 8, colorType: 3, palette, trns: [0, 0, 0, 0], samples: [2, 1, 0, 3] }, expected);
  });

  it('keeps the grey level of colour-keyed (tRNS) pixels', () => {
    expectGrey({ depth: 8, colorType: 0, trns: [0, 77], samples: [77, 78] }, [77 / 255, 78 / 255]);
    expectGrey({ depth: 8, colorType: 2, trns: [0, 9, 0, 9, 0, 9], samples: [9, 9, 9, 0, 0, 0] }, [9 / 255, 0]);
  });

  it('keeps the row-major layout of a 2-D image', () => {
    const img = decodePng(buildPng({ width: 3, height: 2, depth: 8, colorType: 0, samples: [1, 2, 3, 4, 5, 6] }));
    expect(Array.from(img.data, (v) => Math.round(v * 255))).toEqual([1, 2, 3, 4, 5, 6]);
    expect([img.height, img.width]).toEqual([2, 3]);
  });

  it('throws naming the file on corrupt or truncated data', () => {
    const good = buildPng({ width: 4, height: 4, depth: 8, colorType: 0, samples: Array.from({ length: 16 }, (_, i) => i * 16) });
    expect(() => decodePng(good.subarray(0, 5), 'a.png')).toThrow(/corrupt PNG a\.png: not a PNG/);
    expect(() => decodePng(good.subarray(0, 20), 'b.png')).toThrow(/corrupt PNG b\.png: truncated/);
    expect(() => decodePng(good.subarray(0, good.length - 12), 'c.png')).toThrow(/corrupt PNG c\.png: truncated.*no IEND/);
    expect(() => decodePng(good.subarray(0, good.length - 20), 'd.png')).toThrow(/corrupt PNG d\.png: truncated: chunk IDAT/);
    expect(() => decodePng(new TextEncoder().encode('hello, not a png'), 'e.png')).toThrow(/corrupt PNG e\.png/);
    const flipped = good.slice();
    flipped[45] ^= 0xff; // inside the IDAT payload: the CRC no longer matches
    expect(() => decodePng(flipped, 'f.png')).toThrow(/corrupt PNG f\.png/);
  });
});

describe('encodePng / readImage', () => {
  it('round-trips 8-bit grey and writes RGB that decodes to its luma', () => {
    const grey = { data: Float32Array.from([0, 1, 2, 3, 250, 255], (v) => v / 255), channels: 1, height: 2, width: 3 };
    expect(Array.from(decodePng(encodePng(grey)).data)).toEqual(Array.from(grey.data));
    // Two RGB pixels, (1, 0.5, 1) and (0, 0, 0.5), as CHW planes R, G, B.
    const rgb = { data: Float32Array.from([1, 0, 0.5, 0, 1, 0.5]), channels: 3, height: 1, width: 2 };
    const expected = [luma(255, 128, 255), luma(0, 0, 128)].map((v) => Math.fround(v / 255));
    expect(Array.from(decodePng(encodePng(rgb)).data)).toEqual(expected);
    expect(() => encodePng({ ...rgb, channels: 2, width: 1, data: new Float32Array(2) })).toThrow(/1 or 3 channels/);
  });

  it('reads files and names a missing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'png-'));
    const path = join(dir, 'x.png');
    writeFileSync(path, buildPng({ width: 1, height: 1, depth: 8, colorType: 0, samples: [51] }));
    expect(Array.from(readImage(path).data)).toEqual([Math.fround(51 / 255)]);
    expect(() => readImage(join(dir, 'missing.png'))).toThrow(`image file not found: ${join(dir, 'missing.png')}`);
    writeFileSync(join(dir, 'bad.png'), 'junk');
    expect(() => readImage(join(dir, 'bad.png'))).toThrow(`corrupt PNG ${join(dir, 'bad.png')}`);
  });
});
