/** Patient-disjoint train/validation/test splits of NIH records. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NihRecord } from './nih.js';
import { deriveSeed, Rng } from './rng.js';

/** The three splits; `source` says whether the test split came from the official lists. */
export type Splits = {
  train: NihRecord[];
  val: NihRecord[];
  test: NihRecord[];
  source: 'official' | 'seeded';
};

/** Options of `splitByPatient`. */
export interface SplitOptions {
  /** Where to look for the release's train_val_list.txt and test_list.txt. */
  dataDir?: string;
  /** Fraction of the train/val patients that go to validation. */
  valFraction: number;
  /** Fraction of all patients that go to test; only used when the official lists are absent. */
  testFraction: number;
  seed: number;
}

function readList(path: string): Set<string> {
  return new Set(readFileSync(path, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== ''));
}

const patients = (records: readonly NihRecord[]) => new Set(records.map((r) => r.patientId));

/** Splits records so that `fraction` of their patients (chosen with `seed`) form the second part. */
function carve(records: NihRecord[], fraction: number, seed: number): [NihRecord[], NihRecord[]] {
  const ids = [...patients(records)].sort((a, b) => a - b);
  const chosen = new Set(new Rng(seed).shuffle(ids).slice(0, Math.round(fraction * ids.length)));
  return [records.filter((r) => !chosen.has(r.patientId)), records.filter((r) => chosen.has(r.patientId))];
}

/**
 * Splits records by patient. When `dataDir` holds the release's train_val_list.txt and
 * test_list.txt, they decide test versus train/val (every record must appear in one of them);
 * otherwise `testFraction` of the patients are drawn for test with `seed`. Validation is always
 * `valFraction` of the train/val patients, drawn with `seed`.
 */
export function splitByPatient(records: NihRecord[], options: SplitOptions): Splits {
  const { dataDir, valFraction, testFraction, seed } = options;
  for (const [name, f] of [['valFraction', valFraction], ['testFraction', testFraction]] as const) {
    if (!(f > 0 && f < 1)) throw new Error(`splitByPatient: ${name} must be in (0, 1), got ${f}`);
  }
  let trainVal: NihRecord[];
  let test: NihRecord[];
  const trainValList = join(dataDir ?? '', 'train_val_list.txt');
  const testList = join(dataDir ?? '', 'test_list.txt');
  const present = dataDir === undefined ? 0 : Number(existsSync(trainValList)) + Number(existsSync(testList));
  if (present === 1) throw new Error(`splitByPatient: found only one of ${trainValList} and ${testList}`);
  const source: Splits['source'] = present === 2 ? 'official' : 'seeded';
  if (source === 'official') {
    const tv = readList(trainValList);
    const te = readList(testList);
    const unlisted = records.filter((r) => tv.has(r.imageIndex) === te.has(r.imageIndex));
    if (unlisted.length > 0) {
      const r = unlisted[0];
      throw new Error(
        `splitByPatient: ${unlisted.length} image(s) are in neither or both of ${trainValList} and ${testList}, e.g. ${r.imageIndex} (${tv.has(r.imageIndex) ? 'both' : 'neither'})`,
      );
    }
    trainVal = records.filter((r) => tv.has(r.imageIndex));
    test = records.filter((r) => te.has(r.imageIndex));
  } else {
    [trainVal, test] = carve(records, testFraction, seed);
  }
  const [train, val] = carve(trainVal, valFraction, deriveSeed(seed, 1));
  const splits: Splits = { train, val, test, source };
  const empty = (['train', 'val', 'test'] as const).filter((name) => splits[name].length === 0);
  if (empty.length > 0) {
    throw new Error(
      `splitByPatient: empty ${empty.join(' and ')} split (${records.length} records, ${patients(records).size} patients, valFraction ${valFraction}, testFraction ${testFraction}, ${source} test split)`,
    );
  }
  return splits;
}

/** Throws naming a patient whose images are in two splits. */
export function assertPatientDisjoint(splits: Record<string, readonly NihRecord[] | string>): void {
  const owner = new Map<number, string>();
  for (const [name, records] of Object.entries(splits)) {
    if (typeof records === 'string') continue; // Splits.source
    for (const r of records) {
      const other = owner.get(r.patientId);
      if (other !== undefined && other !== name) {
        throw new Error(`patient ${r.patientId} is in both the ${other} and the ${name} split (image ${r.imageIndex})`);
      }
      owner.set(r.patientId, name);
    }
  }
}
