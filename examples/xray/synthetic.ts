/**
 * Synthetic stand-in for NIH ChestX-ray14: procedurally drawn chest radiograph phantoms written in
 * the released directory layout, so the example pipeline runs end to end without the 45 GB download.
 *
 * Geometry is in normalised image coordinates (x to the viewer's right, y down, both in [0, 1]).
 * Images are seen as in a PA film: the patient's left is on the viewer's right, so the heart sits
 * right of the midline in the picture.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pngjs from 'pngjs';
import {
  type Anatomy, baseLungs, heartDistance, heartOf, jitterAnatomy, lungBox, lungMask, sampleAnatomy,
} from './synthetic-anatomy.js';
import { Canvas, clamp01, ell, inside, Rng, segmentDistance, smooth, valueNoise } from './synthetic-canvas.js';
import { drawFindings, drawPneumothorax, type Finding, FINDINGS } from './synthetic-findings.js';

export { FINDINGS, type Finding } from './synthetic-findings.js';
export {
  type Anatomy, baseLungs, type Heart, heartDistance, heartOf, type Lung, lungDistance, lungMask, sampleAnatomy,
} from './synthetic-anatomy.js';

/** Fraction of NIH images labelled "No Finding". */
export const NO_FINDING_FREQUENCY = 0.54;

/** Approximate per-image frequency of each finding in NIH ChestX-ray14. */
export const NIH_FREQUENCIES: Readonly<Record<Finding, number>> = {
  Atelectasis: 0.1, Cardiomegaly: 0.025, Effusion: 0.12, Infiltration: 0.18, Mass: 0.05,
  Nodule: 0.06, Pneumonia: 0.013, Pneumothorax: 0.05, Consolidation: 0.04, Edema: 0.02,
  Emphysema: 0.022, Fibrosis: 0.015, Pleural_Thickening: 0.03, Hernia: 0.002,
};

/** The header line of `Data_Entry_2017.csv` exactly as released (with its trailing comma). */
export const NIH_CSV_HEADER =
  'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,' +
  'OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],';

/** Options of {@link generateSyntheticNih}. */
export interface SyntheticNihOptions {
  /** Number of patients; each gets 1–6 images. */
  patients: number;
  /** Side of the square PNGs in pixels (default 128). */
  imageSize?: number;
  /** Seed of every random choice; the same options give byte-identical files. */
  seed?: number;
  /**
   * Minimum per-image frequency of every finding (default 0: NIH frequencies). Raising it gives a
   * small set enough positives of rare classes to train on and to measure AUROC.
   */
  boost?: number;
  /** Images per `images_NNN/images/` folder (default 500). */
  imagesPerFolder?: number;
}

/** What {@link generateSyntheticNih} wrote (or found already written). */
export interface SyntheticNihResult {
  csvPath: string;
  patients: number;
  images: number;
  /** True when a complete set with the same options was already there and nothing was written. */
  skipped: boolean;
}

const MARKER = '.synthetic-complete.json';

/** Raised whenever the generator draws other images for the same options, so caches named by it match the code. */
export const SYNTHETIC_VERSION = 2;

/**
 * Target per-image frequency of each finding and of an abnormal image for a given `boost`.
 * Boosted classes raise the abnormal fraction too, so the mean number of findings per abnormal
 * image stays NIH-like instead of piling every finding onto the same images.
 */
export function findingFrequencies(boost = 0): { abnormal: number; findings: Record<Finding, number> } {
  if (!(boost >= 0 && boost <= 0.3)) throw new Error(`synthetic: boost must be in [0, 0.3], got ${boost}`);
  const findings = {} as Record<Finding, number>;
  for (const f of FINDINGS) findings[f] = Math.max(NIH_FREQUENCIES[f], boost);
  const sumNih = FINDINGS.reduce((s, f) => s + NIH_FREQUENCIES[f], 0);
  const sum = FINDINGS.reduce((s, f) => s + findings[f], 0);
  return { abnormal: Math.min(0.9, ((1 - NO_FINDING_FREQUENCY) * sum) / sumNih), findings };
}

/**
 * Draws an image's labels. An abnormal image gets one primary finding (chosen in proportion to the
 * frequencies) and each other finding independently with probability r; r is solved so that every
 * finding's marginal frequency is exactly its target: f·p/S + p·(1 − f/S) = p.
 */
function sampleLabels(rng: Rng, freq: ReturnType<typeof findingFrequencies>): Finding[] {
  if (!rng.chance(freq.abnormal)) return [];
  const f = freq.abnormal;
  const sum = FINDINGS.reduce((s, k) => s + freq.findings[k], 0);
  let pick = rng.next() * sum;
  const primary = FINDINGS.find((k) => (pick -= freq.findings[k]) < 0) ?? FINDINGS[FINDINGS.length - 1];
  return FINDINGS.filter((k) => {
    if (k === primary) return true;
    const p = freq.findings[k];
    return rng.chance((p * (1 - f / sum)) / (f * (1 - p / sum)));
  });
}

/**
 * Renders one phantom as grey levels in [0, 1], row-major `size × size`. Noise comes from `seed`
 * and the findings' placement from a separate stream, so the same anatomy and seed drawn with and
 * without a finding differ only by that finding.
 */
export function renderPhantom(a: Anatomy, findings: readonly Finding[], size: number, seed: number): Float32Array {
  if (!Number.isInteger(size) || size < 16) throw new Error(`synthetic: image size must be an integer ≥ 16, got ${size}`);
  for (const f of findings) if (!FINDINGS.includes(f)) throw new Error(`synthetic: unknown finding '${f}'`);
  const rng = new Rng(seed);
  const frng = new Rng(seed ^ 0x9e3779b9);
  const has = (f: Finding): boolean => findings.includes(f);
  const c = new Canvas(size);
  const lungs = baseLungs(a);
  const lungValue = has('Emphysema') ? a.lung * 0.55 : a.lung;
  let ctr = a.ctr;
  let heartRy = a.heartRy;
  if (has('Emphysema')) {
    // Hyperinflation: bigger lungs pushing a flattened diaphragm down, narrow heart.
    for (const l of lungs) Object.assign(l, { rx: l.rx * 1.1, ry: l.ry * 1.15, cy: l.cy + 0.02, baseY: l.baseY + 0.06, domeH: 0.006 });
    ctr *= 0.85;
  }
  const atelectasisSide = has('Atelectasis') ? frng.side() : 0;
  for (const l of lungs) {
    if (l.dir === atelectasisSide) Object.assign(l, { rx: l.rx * 0.94, ry: l.ry * 0.86, baseY: l.baseY - 0.05 });
  }
  if (has('Cardiomegaly')) {
    ctr = frng.uniform(0.58, 0.68);
    heartRy *= 1.15;
  }
  const heart = heartOf(a, ctr, heartRy, lungs[1].baseY);

  c.fill(a.background);
  const bodyRx = a.lungDx + a.lungRx + 0.085;
  c.mix([0, 0, 1, 1], (x, y) => {
    // Squarish trunk (shoulders) and the neck above it.
    const u = Math.abs((x - a.cx) / bodyRx);
    const v = Math.abs((y - 0.62) / 0.54);
    const cube = u * u * u + v * v * v;
    // cbrt only near the outline, where the soft edge needs the true distance.
    const trunk = cube < 0.9 ? 1 : cube > 1.1 ? 0 : inside(Math.cbrt(cube), 0.04);
    return Math.max(trunk, inside(Math.abs(x - a.cx) / 0.075, 0.2) * (y < 0.15 ? 1 : 0));
  }, a.tissue);
  const ribs = (x: number, y: number): number => {
    const rib = Math.max(0, Math.cos((2 * Math.PI * (y - a.ribCurve * (x - a.cx) * (x - a.cx))) / a.ribPeriod));
    return 0.08 * (rib * rib) ** 3;
  };
  const markings = valueNoise(rng, 14);
  for (const l of lungs) {
    c.mix(lungBox(l), (x, y) => lungMask(l, x, y), (x, y) => {
      // Vessel-like ridges, denser near the hilum.
      const hilum = clamp01(1 - Math.abs(x - l.cx + 0.6 * l.dir * l.rx) / (1.6 * l.rx));
      const m = markings(x, y);
      return lungValue + ribs(x, y) + 0.05 * (0.3 + 0.7 * hilum) * Math.exp(-44 * m * m);
    });
  }
  if (has('Pneumothorax')) drawPneumothorax(c, lungs[frng.side() === -1 ? 0 : 1], (x, y) => lungValue * 0.3 + ribs(x, y));
  c.add([a.cx - 0.05, 0, a.cx + 0.05, 1], (x, y) =>
    0.12 * inside(Math.abs(x - a.cx) / 0.03, 0.3) * (0.85 + 0.15 * Math.cos((2 * Math.PI * y) / 0.045)));
  // Mediastinum from the aortic knob down into the heart.
  c.mix([a.cx - 0.06, a.lungCy - 0.2, a.cx + 0.08, heart.cy], (x, y) => Math.max(
    inside(ell(x, y, a.cx + 0.035, a.lungCy - 0.13, 0.035, 0.035), 0.3),
    inside(Math.abs(x - a.cx - 0.005) / 0.045, 0.3) * smooth((y - a.lungCy + 0.13) / 0.02)), a.heart * 0.95);
  const reach = heart.rx * 1.1;
  c.mix([heart.cx - reach, heart.cy - reach, heart.cx + reach, heart.cy + reach],
    (x, y) => inside(heartDistance(heart, x, y), 0.08), a.heart);
  for (const dir of [-1, 1]) {
    const p: [number, number] = [a.cx + dir * 0.04, 0.2];
    const q: [number, number] = [a.cx + dir * (a.lungDx + a.lungRx + 0.06), 0.14];
    c.add([Math.min(p[0], q[0]) - 0.03, 0.09, Math.max(p[0], q[0]) + 0.03, 0.24],
      (x, y) => 0.18 * inside(segmentDistance(x, y, p, q) / 0.016, 0.4));
  }
  drawFindings(c, a, lungs, has, frng, lungValue, heart);

  const haze = valueNoise(rng, 5);
  // Gamma through a table: pow per pixel dominated the rendering time.
  const levels = 1024;
  const gamma = Float32Array.from({ length: levels + 1 }, (_, k) => (k / levels) ** a.gamma);
  c.each([0, 0, 1, 1], (x, y, i) => {
    // Film grain: a sum of two uniforms is close enough to Gaussian and much cheaper.
    const grain = 0.017 * (rng.next() + rng.next() - 1);
    c.px[i] = gamma[Math.round(clamp01(a.offset + a.contrast * (c.px[i] + 0.03 * haze(x, y) + grain)) * levels)];
  });
  return c.px;
}

/** Encodes grey levels in [0, 1] as an 8-bit greyscale PNG. */
export function encodeGreyPng(grey: Float32Array, size: number): Buffer {
  const png = new pngjs.PNG({ width: size, height: size, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  const bytes = Buffer.alloc(size * size);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.round(clamp01(grey[i]) * 255);
  png.data = bytes;
  return pngjs.PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

/** Image counts per patient: mostly few films, some with several follow-ups. */
const FOLLOW_UP_WEIGHTS = [0.3, 0.22, 0.17, 0.13, 0.1, 0.08];

/**
 * Writes a synthetic dataset in the NIH ChestX-ray14 layout under `dir`: `Data_Entry_2017.csv` and
 * 8-bit grey PNGs named `%08d_%03d.png` (patient, follow-up) in `images_001/images/`, … . Runs once:
 * a marker written last makes later calls with the same options return at once.
 */
export function generateSyntheticNih(dir: string, options: SyntheticNihOptions): SyntheticNihResult {
  const { patients, imageSize = 128, seed = 0, boost = 0, imagesPerFolder = 500 } = options;
  if (!Number.isInteger(patients) || patients < 1) throw new Error(`synthetic: patients must be a positive integer, got ${patients}`);
  if (!Number.isInteger(imagesPerFolder) || imagesPerFolder < 1) throw new Error(`synthetic: imagesPerFolder must be a positive integer, got ${imagesPerFolder}`);
  if (!Number.isInteger(seed)) throw new Error(`synthetic: seed must be an integer, got ${seed}`);
  const freq = findingFrequencies(boost);
  const settings = { patients, imageSize, seed, boost, imagesPerFolder };
  const csvPath = join(dir, 'Data_Entry_2017.csv');
  const markerPath = join(dir, MARKER);
  if (existsSync(markerPath)) {
    const done = JSON.parse(readFileSync(markerPath, 'utf8')) as { settings: typeof settings; images: number };
    if (JSON.stringify(done.settings) !== JSON.stringify(settings)) {
      throw new Error(`synthetic: ${dir} already holds a synthetic set made with ${JSON.stringify(done.settings)}, ` +
        `not ${JSON.stringify(settings)}; remove it or choose another directory`);
    }
    return { csvPath, patients, images: done.images, skipped: true };
  }
  const rng = new Rng(seed);
  const lines = [NIH_CSV_HEADER];
  let images = 0;
  for (let pid = 1; pid <= patients; pid++) {
    const anatomy = sampleAnatomy(rng.uint32());
    const count = rng.weighted(FOLLOW_UP_WEIGHTS) + 1;
    const sex = rng.chance(0.56) ? 'M' : 'F';
    let age = Math.round(Math.min(95, Math.max(1, 47 + 17 * rng.normal())));
    let labels: Finding[] = [];
    for (let fu = 0; fu < count; fu++) {
      // Follow-ups often keep the previous findings; the marginal frequencies are unchanged.
      if (fu === 0 || !rng.chance(0.4)) labels = sampleLabels(rng, freq);
      if (fu > 0 && rng.chance(0.3)) age = Math.min(95, age + 1);
      const name = `${String(pid).padStart(8, '0')}_${String(fu).padStart(3, '0')}.png`;
      const folder = join(dir, `images_${String(Math.floor(images / imagesPerFolder) + 1).padStart(3, '0')}`, 'images');
      if (images % imagesPerFolder === 0) mkdirSync(folder, { recursive: true });
      const grey = renderPhantom(jitterAnatomy(anatomy, rng), labels, imageSize, rng.uint32());
      writeFileSync(join(folder, name), encodeGreyPng(grey, imageSize));
      const view = rng.chance(0.4) ? 'AP' : 'PA';
      const [w, h] = [rng.between(2000, 3056), rng.between(2020, 3056)];
      const spacing = rng.chance(0.8) ? '0.143' : '0.168';
      const text = labels.length ? [...labels].sort().join('|') : 'No Finding';
      lines.push(`${name},${text},${fu},${pid},${age},${sex},${view},${w},${h},${spacing},${spacing},`);
      images++;
    }
  }
  writeFileSync(csvPath, lines.join('\n') + '\n');
  writeFileSync(markerPath, JSON.stringify({ settings, images }) + '\n');
  return { csvPath, patients, images, skipped: false };
}
