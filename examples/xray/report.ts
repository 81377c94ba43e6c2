/**
 * Pictures and the HTML report of a chest X-ray run: training curves and ROC curves drawn with
 * Vega-Lite (rendered headless to SVG, rasterised with resvg), Grad-CAM heat-map overlays, and one
 * HTML page that ties the metrics and pictures together.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import pngjs from 'pngjs';
import { parse as parseVega, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { MetricsSummary, RocCurve } from './metrics.js';

/** One epoch's entry of the training history. */
export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  /** `null` when no class of the validation split had both positives and negatives. */
  valMeanAuroc: number | null;
}

/** What {@link writeHtmlReport} puts on the page. */
export interface HtmlReport {
  title: string;
  /** Run settings, shown as a two-column table. */
  config: Record<string, unknown>;
  metrics: MetricsSummary;
  /** Pictures to show; `file` is relative to the report's directory (absolute paths are made relative). */
  images: { title: string; file: string }[];
}

/** Font of the chart text; resvg falls back to any system font when it is missing. */
const FONT = 'DejaVu Sans';

/** Renders a Vega-Lite spec to a PNG file (2× scale, white background). */
async function writeChart(path: string, spec: TopLevelSpec): Promise<void> {
  const view = new View(parseVega(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: FONT, sansSerifFamily: FONT },
  }).render().asPng();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, png);
}

const chartConfig = { font: FONT, view: { stroke: '#ccc' } };

/** Checks that every named field of every entry is a finite number (`null` allowed where `nullable`). */
function checkFinite(what: string, rows: readonly object[], fields: string[], nullable: string[] = []): void {
  rows.forEach((row, i) => {
    for (const f of fields) {
      const v = (row as Record<string, unknown>)[f];
      if (v === null && nullable.includes(f)) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what}: entry ${i} has ${f} = ${String(v)}`);
    }
  });
}

/** Writes a PNG with the train/validation loss and the validation mean AUROC per epoch, side by side. */
export async function writeTrainingCurves(path: string, history: readonly EpochRecord[]): Promise<void> {
  if (history.length === 0) throw new Error(`writeTrainingCurves: empty history for ${path}`);
  checkFinite('writeTrainingCurves', history, ['epoch', 'trainLoss', 'valLoss', 'valMeanAuroc'], ['valMeanAuroc']);
  const losses = history.flatMap((h) => [
    { epoch: h.epoch, loss: h.trainLoss, split: 'train' },
    { epoch: h.epoch, loss: h.valLoss, split: 'validation' },
  ]);
  const aurocs = history.flatMap((h) => (h.valMeanAuroc === null ? [] : [{ epoch: h.epoch, auroc: h.valMeanAuroc }]));
  const epochs = history.map((h) => h.epoch);
  // Both panels span every epoch, even those without a mean AUROC.
  const epoch = {
    field: 'epoch', type: 'quantitative' as const, title: 'epoch', axis: { tickMinStep: 1 },
    scale: { domain: [Math.min(...epochs), Math.max(...epochs)] },
  };
  const lowest = Math.min(0.5, ...aurocs.map((a) => a.auroc));
  await writeChart(path, {
    config: chartConfig,
    hconcat: [
      {
        title: 'Loss', width: 320, height: 220, data: { values: losses },
        mark: { type: 'line', point: true },
        encoding: {
          x: epoch,
          y: { field: 'loss', type: 'quantitative', title: 'BCE loss', scale: { zero: false } },
          color: { field: 'split', type: 'nominal', title: null, legend: { orient: 'top', direction: 'horizontal' } },
        },
      },
      {
        title: 'Validation mean AUROC', width: 320, height: 220, data: { values: aurocs },
        mark: { type: 'line', point: true, color: '#2a7a2a' },
        encoding: {
          x: epoch,
          y: { field: 'auroc', type: 'quantitative', title: 'mean AUROC', scale: { domain: [lowest, 1] } },
        },
      },
    ],
  });
}

/** Writes a PNG with one ROC curve per class (legend shows each class's AUROC) and the chance diagonal. */
export async function writeRocCurves(path: string, rocs: readonly RocCurve[], split = 'test'): Promise<void> {
  if (rocs.length === 0) throw new Error(`writeRocCurves: no ROC curves to draw for ${path}`);
  const points = rocs.flatMap((r) => {
    if (r.fpr.length !== r.tpr.length || r.fpr.length < 2) {
      throw new Error(`writeRocCurves: class ${r.label} has ${r.fpr.length} fpr and ${r.tpr.length} tpr values`);
    }
    checkFinite('writeRocCurves', [r], ['auroc']);
    const name = `${r.label} (${r.auroc.toFixed(3)})`;
    return r.fpr.map((fpr, i) => ({ name, fpr, tpr: r.tpr[i], i }));
  });
  const axis = (field: string, title: string) => ({ field, type: 'quantitative' as const, title, scale: { domain: [0, 1] } });
  await writeChart(path, {
    config: chartConfig,
    title: `ROC curves (${split})`,
    width: 380, height: 380,
    layer: [
      {
        data: { values: [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }] },
        mark: { type: 'line', color: '#999', strokeDash: [4, 4] },
        encoding: { x: axis('fpr', 'false positive rate'), y: axis('tpr', 'true positive rate') },
      },
      {
        data: { values: points },
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x: axis('fpr', 'false positive rate'),
          y: axis('tpr', 'true positive rate'),
          color: { field: 'name', type: 'nominal', title: 'class (AUROC)', sort: null, scale: { scheme: 'tableau20' }, legend: { labelLimit: 400 } },
          // Draw in curve order, not sorted by x: ROC curves have vertical runs.
          order: { field: 'i', type: 'quantitative' },
        },
      },
    ],
  });
}

/** Bilinear resize of a [h, w] map to [oh, ow] with half-pixel centres (PyTorch `align_corners=False`). */
function resizeBilinear(src: Float32Array, h: number, w: number, oh: number, ow: number): Float32Array {
  const out = new Float32Array(oh * ow);
  for (let i = 0; i < oh; i++) {
    const y = Math.min(h - 1, Math.max(0, ((i + 0.5) * h) / oh - 0.5));
    const y0 = Math.floor(y);
    const y1 = Math.min(h - 1, y0 + 1);
    const ty = y - y0;
    for (let j = 0; j < ow; j++) {
      const x = Math.min(w - 1, Math.max(0, ((j + 0.5) * w) / ow - 0.5));
      const x0 = Math.floor(x);
      const x1 = Math.min(w - 1, x0 + 1);
      const tx = x - x0;
      const top = src[y0 * w + x0] * (1 - tx) + src[y0 * w + x1] * tx;
      const bottom = src[y1 * w + x0] * (1 - tx) + src[y1 * w + x1] * tx;
      out[i * ow + j] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/** Rescales to [0, 1] by min and max; a constant map becomes all zeros. */
function normalize(values: Float32Array): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi - lo;
  return values.map((v) => (span > 0 ? (v - lo) / span : 0));
}

/** Jet-like colour map: blue (0) → cyan → yellow → red (1). */
export function jet(t: number): [number, number, number] {
  const c = (v: number): number => Math.min(1, Math.max(0, v));
  return [c(1.5 - Math.abs(4 * t - 3)), c(1.5 - Math.abs(4 * t - 2)), c(1.5 - Math.abs(4 * t - 1))];
}

/**
 * Writes an RGB PNG of a heat map (e.g. Grad-CAM, [hh, hw]) over a grey image ([h, w]): the map is
 * upsampled bilinearly, both are min–max normalised, and the jet colour is blended in with opacity
 * `alpha`.
 */
export function writeHeatmapOverlay(
  path: string, grey: Float32Array, h: number, w: number, heat: Float32Array, hh: number, hw: number, alpha = 0.45,
): void {
  for (const [name, v] of [['h', h], ['w', w], ['hh', hh], ['hw', hw]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`writeHeatmapOverlay: ${name} must be a positive integer, got ${v}`);
  }
  if (grey.length !== h * w) throw new Error(`writeHeatmapOverlay: grey has ${grey.length} values, expected ${h}x${w}`);
  if (heat.length !== hh * hw) throw new Error(`writeHeatmapOverlay: heat has ${heat.length} values, expected ${hh}x${hw}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`writeHeatmapOverlay: alpha must be in [0, 1], got ${alpha}`);
  for (const [name, values] of [['grey', grey], ['heat', heat]] as const) {
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`writeHeatmapOverlay: ${name} value at index ${bad} is ${values[bad]}`);
  }
  const base = normalize(grey);
  const map = normalize(resizeBilinear(heat, hh, hw, h, w));
  const png = new pngjs.PNG({ width: w, height: h, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  const rgb = Buffer.alloc(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const colour = jet(map[i]);
    for (let ch = 0; ch < 3; ch++) rgb[i * 3 + ch] = Math.round(255 * ((1 - alpha) * base[i] + alpha * colour[ch]));
  }
  png.data = rgb;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, pngjs.PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number | null): string => (v === null ? '—' : v.toFixed(3));
const row = (cells: string[], tag = 'td'): string => `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;

/**
 * Writes `index.html` in `dir`: run settings, summary metrics, the per-class table and the
 * pictures (referenced by relative path, so the folder can be moved or zipped). Returns its path.
 */
export function writeHtmlReport(dir: string, report: HtmlReport): string {
  const images = report.images.map(({ title, file }) => {
    const full = isAbsolute(file) ? file : join(dir, file);
    if (!existsSync(full)) throw new Error(`writeHtmlReport: image '${title}' not found at ${full}`);
    return { title, src: relative(dir, full).split(sep).join('/') };
  });
  const m = report.metrics;
  const config = Object.entries(report.config).map(([k, v]) =>
    row([escapeHtml(k), escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))]));
  const summary = [
    row(['', 'micro', 'macro'], 'th'),
    row(['precision', fmt(m.precision.micro), fmt(m.precision.macro)]),
    row(['recall', fmt(m.recall.micro), fmt(m.recall.macro)]),
    row(['F1', fmt(m.f1.micro), fmt(m.f1.macro)]),
  ];
  const perClass = m.perClass.map((c) =>
    row([escapeHtml(c.label), String(c.support), fmt(c.precision), fmt(c.recall), fmt(c.f1), fmt(c.auroc)]));
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(report.title)}</title>
<style>
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
figure img { max-width: 720px; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>${escapeHtml(report.title)}</h1>
<h2>Settings</h2>
<table>${config.join('\n')}</table>
<h2>Metrics (n = ${m.n}, threshold ${m.threshold})</h2>
<p>Label accuracy ${fmt(m.accuracy)} · mean AUROC ${fmt(m.meanAuroc)}</p>
<table>${summary.join('\n')}</table>
<table>
${row(['class', 'positives', 'precision', 'recall', 'F1', 'AUROC'], 'th')}
${perClass.join('\n')}
</table>
<h2>Figures</h2>
${images.map((i) => `<figure><img src="${escapeHtml(i.src)}" alt="${escapeHtml(i.title)}"><figcaption>${escapeHtml(i.title)}</figcaption></figure>`).join('\n')}
</body>
</html>
`;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'index.html');
  writeFileSync(path, html);
  return path;
}
