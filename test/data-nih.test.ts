import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FINDINGS,
  assertPatientDisjoint,
  decodeLabels,
  encodeLabels,
  findImages,
  parseDataEntry,
  splitByPatient,
  type NihRecord,
} from '../src/data/index.js';

// The header and first lines of the released files, as published.
const V2017 = [
  'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],',
  '00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,',
  '00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143,',
  '00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171,',
  '00000003_000.png,Hernia,0,3,81,F,AP,2582,2991,0.143,0.143,',
  '',
].join('\n');
const V2020 = [
  'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]',
  '00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143',
  '00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143',
  '00000002_000.png,No Finding,0,2,80,M,PA,2500,2048,0.171,0.171',
].join('\r\n');

describe('parseDataEntry', () => {
  it('parses the 2017 release with its split bracketed headers and trailing comma', () => {
    const records = parseDataEntry(V2017, 'Data_Entry_2017.csv');
    expect(records).toHaveLength(4);
    expect(records[1]).toEqual({
      imageIndex: '00000001_001.png',
      labels: ['Cardiomegaly', 'Emphysema'],
      followUp: 1,
      patientId: 1,
      age: 58,
      sex: 'M',
      viewPosition: 'PA',
    });
    expect(records[2].labels).toEqual(['No Finding']);
    expect(records[3]).toMatchObject({ patientId: 3, sex: 'F', viewPosition: 'AP', labels: ['Hernia'] });
  });

  it('parses the v2020 variant (Patient Sex, CRLF, no trailing comma)', () => {
    const records = parseDataEntry(V2020, 'Data_Entry_2017_v2020.csv');
    expect(records.map((r) => [r.imageIndex, r.age, r.sex])).toEqual([
      ['00000001_000.png', 57, 'M'],
      ['00000001_001.png', 58, 'M'],
      ['00000002_000.png', 80, 'M'],
    ]);
  });

  it('finds columns by name, accepts ages like 058Y, and names bad input', () => {
    const reordered = 'Patient ID,Image Index,View Position,Finding Labels,Patient Age,Follow-up #,Patient Gender\n7,a.png,AP,Mass|Nodule,058Y,2,F\n';
    expect(parseDataEntry(reordered, 'r.csv')).toEqual([
      { imageIndex: 'a.png', labels: ['Mass', 'Nodule'], followUp: 2, patientId: 7, age: 58, sex: 'F', viewPosition: 'AP' },
    ]);
    expect(() => parseDataEntry('Image Index,Finding Labels,Patient ID\nx.png,Mass,1\n', 'm.csv')).toThrow(
      /m\.csv: missing column\(s\) 'Follow-up #', 'Patient Age', 'Patient Gender' or 'Patient Sex', 'View Position'/,
    );
    expect(() => parseDataEntry(V2017.replace(',58,M,PA,2682', ',old,M,PA,2682'), 'd.csv')).toThrow(
      /d\.csv line 2 \(00000001_000\.png\): Patient Age 'old' is not a whole number/,
    );
    expect(() => parseDataEntry(`${V2017}00000001_000.png,Mass,0,1,58,M,PA,1,1,1,1,\n`, 'dup.csv')).toThrow(/line 6: duplicate image 00000001_000\.png/);
    expect(() => parseDataEntry(`${V2017}short.png,Mass\n`, 's.csv')).toThrow(/s\.csv line 6: 2 fields/);
    expect(() => parseDataEntry('', 'e.csv')).toThrow(/e\.csv: empty file/);
  });
});

describe('labels', () => {
  it('encodes multi-hot vectors in FINDINGS order', () => {
    expect(FINDINGS).toHaveLength(14);
    const v = encodeLabels(['Cardiomegaly', 'Hernia']);
    expect(Array.from(v)).toEqual(FINDINGS.map((f) => (f === 'Cardiomegaly' || f === 'Hernia' ? 1 : 0)));
    expect(Array.from(encodeLabels(['No Finding']))).toEqual(new Array(14).fill(0));
    const nf = encodeLabels(['No Finding'], { noFindingColumn: true });
    expect(nf).toHaveLength(15);
    expect(Array.from(nf)).toEqual([...new Array(14).fill(0), 1]);
    expect(encodeLabels(['Mass'], { noFindingColumn: true })[14]).toBe(0);
    expect(Array.from(encodeLabels(['b'], { classes: ['a', 'b'] }))).toEqual([0, 1]);
  });

  it('rejects unknown labels naming the label and the image', () => {
    expect(() => encodeLabels(['Mass', 'Flu'], { image: '00000009_000.png' })).toThrow(/image 00000009_000\.png: unknown label 'Flu'/);
    expect(() => encodeLabels(['No Finding', 'Mass'], { image: 'x.png' })).toThrow(/x\.png: 'No Finding' together with/);
  });

  it('decodes with a threshold, No Finding when nothing passes', () => {
    const scores = new Float32Array(14);
    scores[2] = 0.7;
    scores[13] = 0.5;
    scores[4] = 0.49;
    expect(decodeLabels(scores)).toEqual(['Effusion', 'Hernia']);
    expect(decodeLabels(scores, 0.6)).toEqual(['Effusion']);
    expect(decodeLabels(new Float32Array(14))).toEqual(['No Finding']);
    expect(decodeLabels(encodeLabels(['Mass'], { noFindingColumn: true }))).toEqual(['Mass']);
    expect(() => decodeLabels(new Float32Array(3))).toThrow(/3 values, expected 14/);
  });
});

/** `n` patients with 1 to 3 images each. */
function makeRecords(n: number): NihRecord[] {
  const out: NihRecord[] = [];
  for (let p = 1; p <= n; p++) {
    for (let k = 0; k < 1 + (p % 3); k++) {
      const imageIndex = `${String(p).padStart(8, '0')}_${String(k).padStart(3, '0')}.png`;
      out.push({ imageIndex, labels: ['No Finding'], followUp: k, patientId: p, age: 40, sex: 'F', viewPosition: 'PA' });
    }
  }
  return out;
}

const patients = (rs: NihRecord[]) => new Set(rs.map((r) => r.patientId));

describe('splitByPatient', () => {
  it('makes seeded, patient-disjoint splits covering every record once', () => {
    const records = makeRecords(50);
    const s = splitByPatient(records, { valFraction: 0.25, testFraction: 0.2, seed: 1 });
    expect(s.source).toBe('seeded');
    expect(patients(s.test).size).toBe(10); // 20% of 50 patients
    expect(patients(s.val).size).toBe(10); // 25% of the 40 train/val patients
    expect(patients(s.train).size).toBe(30);
    assertPatientDisjoint(s);
    const names = [...s.train, ...s.val, ...s.test].map((r) => r.imageIndex).sort();
    expect(names).toEqual(records.map((r) => r.imageIndex).sort());
    expect(splitByPatient(records, { valFraction: 0.25, testFraction: 0.2, seed: 1 })).toEqual(s);
    expect(splitByPatient(records, { valFraction: 0.25, testFraction: 0.2, seed: 2 }).test).not.toEqual(s.test);
  });

  it('uses the official lists for test versus train/val when present', () => {
    const records = makeRecords(20);
    const dir = mkdtempSync(join(tmpdir(), 'nih-split-'));
    const isTest = (r: NihRecord) => r.patientId % 4 === 0;
    writeFileSync(join(dir, 'test_list.txt'), records.filter(isTest).map((r) => r.imageIndex).join('\n') + '\n');
    writeFileSync(join(dir, 'train_val_list.txt'), records.filter((r) => !isTest(r)).map((r) => r.imageIndex).join('\r\n'));
    const s = splitByPatient(records, { dataDir: dir, valFraction: 0.2, testFraction: 0.5, seed: 3 });
    expect(s.source).toBe('official');
    expect(s.test).toEqual(records.filter(isTest));
    expect(patients(s.val).size).toBe(3); // round(0.2 * 15)
    expect([...s.train, ...s.val].every((r) => !isTest(r))).toBe(true);
    assertPatientDisjoint(s);

    const extra = [...records, { ...records[0], imageIndex: 'unlisted.png' }];
    expect(() => splitByPatient(extra, { dataDir: dir, valFraction: 0.2, testFraction: 0.5, seed: 3 })).toThrow(
      /1 image\(s\) are in neither or both .* e\.g\. unlisted\.png \(neither\)/,
    );
    const half = mkdtempSync(join(tmpdir(), 'nih-split-'));
    writeFileSync(join(half, 'test_list.txt'), '');
    expect(() => splitByPatient(records, { dataDir: half, valFraction: 0.2, testFraction: 0.5, seed: 3 })).toThrow(/only one of/);
  });

  it('reports empty splits and shared patients', () => {
    expect(() => splitByPatient(makeRecords(2), { valFraction: 0.1, testFraction: 0.1, seed: 0 })).toThrow(
      /empty val and test split \(5 records, 2 patients/,
    );
    expect(() => splitByPatient(makeRecords(5), { valFraction: 0, testFraction: 0.2, seed: 0 })).toThrow(/valFraction must be in \(0, 1\)/);
    const rs = makeRecords(2);
    const a = rs[0];
    const b = rs[rs.length - 1]; // patient 2
    expect(() => assertPatientDisjoint({ train: [a], val: [b], test: [{ ...a, imageIndex: 'z.png' }] })).toThrow(
      /patient 1 is in both the train and the test split \(image z\.png\)/,
    );
  });
});

describe('findImages', () => {
  it('maps file names to paths across images_*/images folders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nih-img-'));
    for (const [sub, name] of [['images_001/images', 'a.png'], ['images_002/images', 'b.png'], ['images_002/images', 'notes.txt']]) {
      mkdirSync(join(dir, sub), { recursive: true });
      writeFileSync(join(dir, sub, name), '');
    }
    const found = findImages(dir);
    expect([...found.entries()].sort()).toEqual([
      ['a.png', join(dir, 'images_001/images/a.png')],
      ['b.png', join(dir, 'images_002/images/b.png')],
    ]);
    writeFileSync(join(dir, 'images_002/images/a.png'), '');
    expect(() => findImages(dir)).toThrow(/image a\.png found twice/);
    expect(() => findImages(join(dir, 'nope'))).toThrow(/image directory not found: .*nope/);
  });
});
