import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import {
  baseLungs, FINDINGS, generateSyntheticNih, heartDistance, heartOf, lungDistance, lungMask, renderPhantom,
  sampleAnatomy, type Anatomy, type Finding,
} from '../examples/xray/synthetic.js';

// Written out from the released Data_Entry_2017.csv, not copied from the module under test.
const HEADER =
  'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],';
const NIH_ORDER = [
  'Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia', 'Pneumothorax',
  'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia',
];

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'xray-synthetic-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Row { name: string; labels: string[]; followUp: number; patient: number; age: number; sex: string; view: string }

function readRows(dir: string): { header: string; rows: Row[]; lines: string[] } {
  const text = readFileSync(join(dir, 'Data_Entry_2017.csv'), 'utf8');
  const [header, ...lines] = text.trimEnd().split('\n');
  const rows = lines.map((line) => {
    const cells = line.split(',');
    expect(cells).toHaveLength(12); // 11 columns and the empty cell after the trailing comma
    expect(cells[11]).toBe('');
    return {
      name: cells[0], labels: cells[1].split('|'), followUp: Number(cells[2]), patient: Number(cells[3]),
      age: Number(cells[4]), sex: cells[5], view: cells[6],
    };
  });
  return { header, rows, lines };
}

/** Path of an image in the NIH layout: searched in every images_NNN/images folder. */
function findImage(dir: string, name: string): string | undefined {
  for (const folder of readdirSync(dir).filter((f) => /^images_\d{3}$/.test(f))) {
    const path = join(dir, folder, 'images', name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

describe('generateSyntheticNih', () => {
  it('writes the NIH layout: exact header, file names, 8-bit grey PNGs of the right size', () => {
    const dir = join(root, 'layout');
    const result = generateSyntheticNih(dir, { patients: 12, imageSize: 48, seed: 5, imagesPerFolder: 10 });
    const { header, rows } = readRows(dir);
    expect(header).toBe(HEADER);
    expect(rows).toHaveLength(result.images);
    expect(existsSync(join(dir, 'train_val_list.txt'))).toBe(false);
    expect(existsSync(join(dir, 'test_list.txt'))).toBe(false);
    for (const r of rows) {
      expect(r.name).toBe(`${String(r.patient).padStart(8, '0')}_${String(r.followUp).padStart(3, '0')}.png`);
      expect(r.age).toBeGreaterThanOrEqual(1);
      expect(r.age).toBeLessThanOrEqual(95);
      expect(['M', 'F']).toContain(r.sex);
      expect(['PA', 'AP']).toContain(r.view);
      for (const l of r.labels) expect([...NIH_ORDER, 'No Finding']).toContain(l);
      if (r.labels.includes('No Finding')) expect(r.labels).toHaveLength(1);
      const path = findImage(dir, r.name);
      expect(path, r.name).toBeDefined();
      const png = pngjs.PNG.sync.read(readFileSync(path!));
      expect([png.width, png.height, png.colorType, png.depth]).toEqual([48, 48, 0, 8]);
    }
    // 10 images per folder, filled in order.
    const folders = readdirSync(dir).filter((f) => f.startsWith('images_')).sort();
    expect(folders.length).toBe(Math.ceil(result.images / 10));
    expect(readdirSync(join(dir, folders[0], 'images'))).toHaveLength(10);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = generateSyntheticNih(join(root, 'a'), { patients: 6, imageSize: 32, seed: 9 });
    generateSyntheticNih(join(root, 'b'), { patients: 6, imageSize: 32, seed: 9 });
    generateSyntheticNih(join(root, 'c'), { patients: 6, imageSize: 32, seed: 10 });
    const csv = (d: string): string => readFileSync(join(root, d, 'Data_Entry_2017.csv'), 'utf8');
    expect(csv('a')).toBe(csv('b'));
    expect(csv('a')).not.toBe(csv('c'));
    for (const { name } of readRows(join(root, 'a')).rows) {
      expect(readFileSync(findImage(join(root, 'a'), name)!).equals(readFileSync(findImage(join(root, 'b'), name)!))).toBe(true);
    }
    expect(a.skipped).toBe(false);
  });

  it('runs once: a second call with the same options skips, different options refuse', () => {
    const dir = join(root, 'once');
    const first = generateSyntheticNih(dir, { patients: 3, imageSize: 32, seed: 1 });
    expect(generateSyntheticNih(dir, { patients: 3, imageSize: 32, seed: 1 })).toEqual({ ...first, skipped: true });
    expect(() => generateSyntheticNih(dir, { patients: 4, imageSize: 32, seed: 1 })).toThrow(/already holds a synthetic set/);
  });

  it('rejects bad options', () => {
    expect(() => generateSyntheticNih(join(root, 'bad'), { patients: 0 })).toThrow(/patients must be a positive integer/);
    expect(() => generateSyntheticNih(join(root, 'bad'), { patients: 2, boost: 0.9 })).toThrow(/boost/);
    expect(() => generateSyntheticNih(join(root, 'bad'), { patients: 2, imageSize: 8 })).toThrow(/image size/);
  });

  it('has NIH-like label frequencies and several images per patient', () => {
    const dir = join(root, 'freq');
    generateSyntheticNih(dir, { patients: 1000, imageSize: 16, seed: 3 });
    const { rows } = readRows(dir);
    const share = (label: string): number => rows.filter((r) => r.labels.includes(label)).length / rows.length;
    const nih: Record<string, number> = {
      'No Finding': 0.54, Infiltration: 0.18, Effusion: 0.12, Atelectasis: 0.1, Nodule: 0.06, Mass: 0.05,
      Pneumothorax: 0.05, Consolidation: 0.04, Pleural_Thickening: 0.03, Cardiomegaly: 0.025, Emphysema: 0.022,
      Edema: 0.02, Fibrosis: 0.015, Pneumonia: 0.013, Hernia: 0.002,
    };
    for (const [label, p] of Object.entries(nih)) {
      // Four binomial standard deviations, widened for follow-ups that repeat their labels.
      expect(Math.abs(share(label) - p), label).toBeLessThan(4 * 1.5 * Math.sqrt((p * (1 - p)) / rows.length) + 0.002);
    }
    const perPatient = new Map<number, number>();
    for (const r of rows) perPatient.set(r.patient, (perPatient.get(r.patient) ?? 0) + 1);
    expect(perPatient.size).toBe(1000);
    const counts = [...perPatient.values()];
    expect(Math.min(...counts)).toBe(1);
    expect(Math.max(...counts)).toBe(6);
    expect(rows.length / 1000).toBeGreaterThan(2);
  });

  it('raises rare findings to the boost frequency', () => {
    const dir = join(root, 'boost');
    generateSyntheticNih(dir, { patients: 600, imageSize: 16, seed: 4, boost: 0.08 });
    const { rows } = readRows(dir);
    for (const label of NIH_ORDER) {
      const share = rows.filter((r) => r.labels.includes(label)).length / rows.length;
      expect(share, label).toBeGreaterThan(0.08 - 4 * 1.5 * Math.sqrt((0.08 * 0.92) / rows.length));
    }
  });
});

describe('renderPhantom', () => {
  const size = 64;
  const anatomies = [11, 12, 13, 14, 15].map(sampleAnatomy);

  /** Mean of the image over the pixels whose normalised centre satisfies `where`. */
  function regionMean(img: Float32Array, where: (x: number, y: number) => boolean): number {
    let sum = 0;
    let n = 0;
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        if (!where((j + 0.5) / size, (i + 0.5) / size)) continue;
        sum += img[i * size + j];
        n++;
      }
    }
    expect(n).toBeGreaterThan(10);
    return sum / n;
  }

  const pair = (a: Anatomy, f: Finding, seed = 21): [Float32Array, Float32Array] =>
    [renderPhantom(a, [], size, seed), renderPhantom(a, [f], size, seed)];

  it('uses the NIH label order', () => {
    expect([...FINDINGS]).toEqual(NIH_ORDER);
  });

  it('is deterministic and changes only where a finding is drawn', () => {
    const a = anatomies[0];
    expect(renderPhantom(a, [], size, 3)).toEqual(renderPhantom(a, [], size, 3));
    const [normal, nodule] = pair(a, 'Nodule');
    // Outside the lungs nothing moves: noise does not depend on the findings.
    const lungs = baseLungs(a);
    for (let i = 0; i < size * size; i++) {
      const [x, y] = [((i % size) + 0.5) / size, (Math.floor(i / size) + 0.5) / size];
      if (lungs.every((l) => lungDistance(l, x, y) > 1.2)) expect(nodule[i]).toBe(normal[i]);
    }
  });

  it('makes every finding visible', () => {
    for (const a of anatomies) {
      for (const f of FINDINGS) {
        const [normal, sick] = pair(a, f);
        const changed = normal.filter((v, i) => Math.abs(sick[i] - v) > 0.1).length;
        expect(changed, `${f}: pixels changed by more than 0.1`).toBeGreaterThanOrEqual(8);
      }
    }
  });

  it('Cardiomegaly brightens the lung just outside the normal heart', () => {
    for (const a of anatomies) {
      const heart = heartOf(a, a.ctr, a.heartRy, a.baseY);
      const rim = (x: number, y: number): boolean => {
        const d = heartDistance(heart, x, y);
        return d > 1.1 && d < 1.5 && y < heart.cy;
      };
      const [normal, sick] = pair(a, 'Cardiomegaly');
      expect(regionMean(sick, rim) - regionMean(normal, rim)).toBeGreaterThan(0.08);
    }
  });

  it('Effusion whitens a lung base', () => {
    for (const a of anatomies) {
      const [normal, sick] = pair(a, 'Effusion');
      // The heart is drawn over the left base and hides fluid there, as on a real film: look beside it.
      const heart = heartOf(a, a.ctr, a.heartRy, a.baseY);
      const rises = baseLungs(a).map((l) => {
        const base = (x: number, y: number): boolean => lungMask(l, x, y) > 0.5 && y > l.baseY - 0.1 && heartDistance(heart, x, y) > 1.1;
        return regionMean(sick, base) - regionMean(normal, base);
      });
      expect(Math.max(...rises)).toBeGreaterThan(0.1);
    }
  });

  it('Pneumothorax darkens the outer rim of a lung; Emphysema darkens both lungs', () => {
    for (const a of anatomies) {
      const lungs = baseLungs(a);
      const [normal, ptx] = pair(a, 'Pneumothorax');
      const drops = lungs.map((l) => {
        const rim = (x: number, y: number): boolean => lungMask(l, x, y) > 0.5 && lungDistance(l, x, y) > 0.8 && y < l.cy;
        return regionMean(ptx, rim) - regionMean(normal, rim);
      });
      expect(Math.min(...drops)).toBeLessThan(-0.05);
      const emphysema = renderPhantom(a, ['Emphysema'], size, 21);
      for (const l of lungs) {
        const inner = (x: number, y: number): boolean => lungMask(l, x, y) > 0.9;
        expect(regionMean(emphysema, inner)).toBeLessThan(regionMean(normal, inner) - 0.04);
      }
    }
  });
});
