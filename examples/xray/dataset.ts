/** Finding the data (or generating the synthetic default), splitting it by patient and building loaders. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { data } from '@lib/nn';
import type { Config } from './cli.js';
import { generateSyntheticNih, SYNTHETIC_VERSION } from './synthetic.js';

export interface XrayData {
  dataDir: string;
  classes: string[];
  splits: data.Splits;
  loaders: { train: data.DataLoader; val: data.DataLoader; test: data.DataLoader };
  datasets: { train: data.NihDataset; val: data.NihDataset; test: data.NihDataset };
  /** Positive count per class in the training split. */
  positives: number[];
  /** Image name → file path. */
  paths: Map<string, string>;
}

const CSV_NAMES = ['Data_Entry_2017.csv', 'Data_Entry_2017_v2020.csv'];

/** Returns the data directory, generating the synthetic dataset (once, cached) when none is given. */
export function locateData(config: Config, log: (s: string) => void): string {
  if (config.dataDir) {
    const dir = resolve(config.dataDir);
    if (!existsSync(dir)) throw new Error(`--data-dir ${dir} does not exist`);
    return dir;
  }
  const size = 128;
  const dir = resolve('.cache', `xray-synthetic-v${SYNTHETIC_VERSION}-${config.syntheticPatients}p-${size}px-seed${config.seed}`);
  const t0 = performance.now();
  const r = generateSyntheticNih(dir, { patients: config.syntheticPatients, imageSize: size, seed: config.seed, boost: 0.06 });
  log(r.skipped
    ? `synthetic dataset: ${r.images} images of ${r.patients} patients, cached in ${dir}`
    : `synthetic dataset: generated ${r.images} images of ${r.patients} patients in ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return dir;
}

/** Keeps whole patients, in CSV order, until `limit` images. */
function limitRecords(records: data.NihRecord[], limit: number): data.NihRecord[] {
  const out: data.NihRecord[] = [];
  const byPatient = new Map<number, data.NihRecord[]>();
  for (const r of records) byPatient.set(r.patientId, [...(byPatient.get(r.patientId) ?? []), r]);
  for (const group of byPatient.values()) {
    if (out.length >= limit) break;
    out.push(...group);
  }
  return out;
}

export function prepareData(config: Config, dataDir: string, log: (s: string) => void): XrayData {
  const csvName = CSV_NAMES.find((n) => existsSync(join(dataDir, n)));
  if (!csvName) throw new Error(`no ${CSV_NAMES.join(' or ')} in ${dataDir}`);
  let records = data.parseDataEntry(readFileSync(join(dataDir, csvName), 'utf8'), csvName);
  if (!records.length) throw new Error(`${csvName} lists no images`);
  const paths = data.findImages(dataDir);
  const missing = records.filter((r) => !paths.has(r.imageIndex));
  if (missing.length) {
    const list = missing.slice(0, 5).map((r) => r.imageIndex).join(', ');
    if (config.onUnreadable === 'error') {
      throw new Error(`${missing.length} image(s) named in ${csvName} are not below ${dataDir}: ${list}${missing.length > 5 ? ', …' : ''} (use --on-unreadable skip to leave them out)`);
    }
    log(`skipping ${missing.length} image(s) named in ${csvName} but absent: ${list}${missing.length > 5 ? ', …' : ''}`);
    records = records.filter((r) => paths.has(r.imageIndex));
  }
  if (config.limit !== null) records = limitRecords(records, config.limit);
  const classes = config.noFindingColumn ? [...data.FINDINGS, data.NO_FINDING] : [...data.FINDINGS];
  const splits = data.splitByPatient(records, { dataDir, valFraction: 0.15, testFraction: 0.2, seed: config.seed });
  data.assertPatientDisjoint(splits);
  const pcount = (rs: data.NihRecord[]) => new Set(rs.map((r) => r.patientId)).size;
  log(`splits (${splits.source === 'official' ? 'official test list' : 'seeded by patient'}): ` +
    `train ${splits.train.length} images / ${pcount(splits.train)} patients, val ${splits.val.length} / ${pcount(splits.val)}, ` +
    `test ${splits.test.length} / ${pcount(splits.test)}; checked: no patient is in two splits`);

  const make = (rs: data.NihRecord[], train: boolean) =>
    new data.NihDataset(rs, paths, {
      transform: train ? data.trainTransform(config.imageSize) : data.evalTransform(config.imageSize),
      classes, noFindingColumn: config.noFindingColumn, onUnreadable: config.onUnreadable, cacheDir: config.cacheDir ?? undefined,
    });
  const datasets = { train: make(splits.train, true), val: make(splits.val, false), test: make(splits.test, false) };
  const loader = (ds: data.NihDataset, shuffle: boolean, seedOffset: number) =>
    new data.DataLoader(ds, { batchSize: config.batchSize, shuffle, seed: config.seed + seedOffset, numWorkers: config.workers });
  const positives = classes.map((_, j) => splits.train.filter((r) =>
    j < data.FINDINGS.length ? r.labels.includes(classes[j]) : r.labels.length === 0 || r.labels.includes(data.NO_FINDING)).length);
  return {
    dataDir, classes, splits, datasets, positives, paths,
    loaders: { train: loader(datasets.train, true, 0), val: loader(datasets.val, false, 1), test: loader(datasets.test, false, 2) },
  };
}
