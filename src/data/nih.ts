/** The NIH ChestX-ray14 release: metadata CSV, label vectors, image files, standard transforms. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { ColorJitter, Compose, Grayscale, Normalize, Resize, ToTensor, type Transform } from './transforms.js';

/** The 14 findings, in the order of the ChestX-ray14 paper and of most published models. */
export const FINDINGS = [
  'Atelectasis',
  'Cardiomegaly',
  'Effusion',
  'Infiltration',
  'Mass',
  'Nodule',
  'Pneumonia',
  'Pneumothorax',
  'Consolidation',
  'Edema',
  'Emphysema',
  'Fibrosis',
  'Pleural_Thickening',
  'Hernia',
] as const;

/** The label of images without any of the findings. */
export const NO_FINDING = 'No Finding';

/** ImageNet channel statistics used by torchvision's pretrained models. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/** One row of Data_Entry_2017.csv. */
export interface NihRecord {
  imageIndex: string;
  /** Finding names, or ['No Finding']. */
  labels: string[];
  followUp: number;
  patientId: number;
  /** Years. */
  age: number;
  /** 'M' or 'F' as written in the file. */
  sex: string;
  /** 'PA' or 'AP'. */
  viewPosition: string;
}

/**
 * Parses Data_Entry_2017.csv or its Data_Entry_2017_v2020.csv variant. Fields are found by header
 * name, not position: the bracketed names (`OriginalImage[Width,Height]`) split into two columns,
 * the 2017 file ends each line with a comma, and the 2020 file says `Patient Sex` for
 * `Patient Gender`.
 *
 * @param fileName used in error messages
 */
export function parseDataEntry(csvText: string, fileName: string): NihRecord[] {
  let rows: string[][];
  try {
    rows = parse(csvText, { columns: false, relax_column_count: true, skip_empty_lines: true, bom: true, trim: true });
  } catch (e) {
    throw new Error(`${fileName}: CSV parse error: ${e instanceof Error ? e.message : String(e)}`);
  }
  const header = rows[0];
  if (!header) throw new Error(`${fileName}: empty file, expected a header line`);
  const column = (names: string[]) => names.map((n) => header.indexOf(n)).find((i) => i >= 0) ?? -1;
  const wanted = {
    imageIndex: ['Image Index'],
    labels: ['Finding Labels'],
    followUp: ['Follow-up #'],
    patientId: ['Patient ID'],
    age: ['Patient Age'],
    sex: ['Patient Gender', 'Patient Sex'],
    viewPosition: ['View Position'],
  };
  const at = Object.fromEntries(Object.entries(wanted).map(([k, names]) => [k, column(names)])) as Record<keyof typeof wanted, number>;
  const missing = Object.entries(wanted).filter(([k]) => at[k as keyof typeof wanted] < 0).map(([, names]) => names.join("' or '"));
  if (missing.length > 0) throw new Error(`${fileName}: missing column(s) '${missing.join("', '")}' in header`);
  const width = Math.max(...Object.values(at)) + 1;

  const seen = new Set<string>();
  return rows.slice(1).map((row, r) => {
    const line = `${fileName} line ${r + 2}`;
    if (row.length < width) throw new Error(`${line}: ${row.length} fields, expected at least ${width}`);
    const imageIndex = row[at.imageIndex];
    if (!imageIndex) throw new Error(`${line}: empty Image Index`);
    if (seen.has(imageIndex)) throw new Error(`${line}: duplicate image ${imageIndex}`);
    seen.add(imageIndex);
    const integer = (field: string, value: string) => {
      // Ages in early releases read '058Y'.
      const m = /^(\d+)Y?$/.exec(value);
      if (!m) throw new Error(`${line} (${imageIndex}): ${field} '${value}' is not a whole number`);
      return Number(m[1]);
    };
    const labels = row[at.labels].split('|').map((l) => l.trim());
    if (labels.some((l) => l === '')) throw new Error(`${line} (${imageIndex}): empty label in '${row[at.labels]}'`);
    return {
      imageIndex,
      labels,
      followUp: integer('Follow-up #', row[at.followUp]),
      patientId: integer('Patient ID', row[at.patientId]),
      age: integer('Patient Age', row[at.age]),
      sex: row[at.sex],
      viewPosition: row[at.viewPosition],
    };
  });
}

/** Options of `encodeLabels`. */
export interface LabelOptions {
  /** Class names, one output per class (default FINDINGS). */
  classes?: readonly string[];
  /** Append a column set for 'No Finding' (default false: 'No Finding' is all zeros). */
  noFindingColumn?: boolean;
  /** Image name for error messages. */
  image?: string;
}

/** Multi-hot label vector of length classes.length (+1 with `noFindingColumn`). */
export function encodeLabels(labels: readonly string[], options: LabelOptions = {}): Float32Array {
  const { classes = FINDINGS, noFindingColumn = false, image = '<unnamed image>' } = options;
  const out = new Float32Array(classes.length + (noFindingColumn ? 1 : 0));
  for (const label of labels) {
    if (label === NO_FINDING) {
      if (labels.length > 1) throw new Error(`image ${image}: '${NO_FINDING}' together with other labels [${labels.join(', ')}]`);
      if (noFindingColumn) out[classes.length] = 1;
      continue;
    }
    const k = classes.indexOf(label);
    if (k < 0) throw new Error(`image ${image}: unknown label '${label}' (classes: ${classes.join(', ')})`);
    out[k] = 1;
  }
  return out;
}

/**
 * Names of the classes whose score is at least `threshold`, or ['No Finding'] when there are
 * none. A trailing No Finding column (from `noFindingColumn`) is ignored.
 */
export function decodeLabels(vec: ArrayLike<number>, threshold = 0.5, classes: readonly string[] = FINDINGS): string[] {
  if (vec.length !== classes.length && vec.length !== classes.length + 1) {
    throw new Error(`decodeLabels: vector has ${vec.length} values, expected ${classes.length} (or +1 for No Finding)`);
  }
  const names = classes.filter((_, k) => vec[k] >= threshold);
  return names.length > 0 ? names : [NO_FINDING];
}

/**
 * Maps every PNG file name under `dataDir` (searched recursively: the release spreads the images
 * over images_001/images/ … images_012/images/) to its absolute path.
 */
export function findImages(dataDir: string): Map<string, string> {
  const root = resolve(dataDir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`image directory not found: ${root}`);
  const found = new Map<string, string>();
  const pending = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith('.png')) {
        const previous = found.get(entry.name);
        if (previous) throw new Error(`image ${entry.name} found twice: ${previous} and ${path}`);
        found.set(entry.name, path);
      }
    }
  }
  return found;
}

/** The seed project's training pipeline: Resize, Grayscale(3), ColorJitter, ToTensor, Normalize. */
export function trainTransform(size: number): Transform {
  return new Compose([
    new Resize([size, size]),
    new Grayscale(3),
    new ColorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 }),
    new ToTensor(),
    new Normalize(IMAGENET_MEAN, IMAGENET_STD),
  ]);
}

/** The seed project's validation/test pipeline: Resize, Grayscale(3), ToTensor, Normalize. */
export function evalTransform(size: number): Transform {
  return new Compose([new Resize([size, size]), new Grayscale(3), new ToTensor(), new Normalize(IMAGENET_MEAN, IMAGENET_STD)]);
}
