/** What a run leaves behind: predictions.csv, metrics.json, Grad-CAM pictures, charts and the HTML report. */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { data, noGrad, tensor, tidy } from '@lib/nn';
import type { MetricsSummary } from './metrics.js';
import type { XrayModel } from './model.js';

/** Writes a file atomically (temporary name, then rename), so nothing is ever half-written. */
export function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** One row per image: name, true and predicted labels, then the probability of every class. */
export function writePredictions(path: string, names: string[], probs: Float32Array, targets: Float32Array, classes: string[]): void {
  const k = classes.length;
  const lines = [['Image Index', 'True Labels', 'Predicted Labels', ...classes].map(csvField).join(',')];
  names.forEach((name, i) => {
    const p = probs.subarray(i * k, (i + 1) * k);
    const t = targets.subarray(i * k, (i + 1) * k);
    lines.push([name, data.decodeLabels(t, 0.5, classes).join('|'), data.decodeLabels(p, 0.5, classes).join('|'), ...Array.from(p, (v) => v.toFixed(5))].map(csvField).join(','));
  });
  writeAtomic(path, lines.join('\n') + '\n');
}

export function writeMetrics(path: string, metrics: Record<string, MetricsSummary>): void {
  writeAtomic(path, JSON.stringify(metrics, null, 2) + '\n');
}

/** Prints the seed's test lines: `File: …, Predicted classes: […], True classes: […]`. */
export function printPredictions(names: string[], probs: Float32Array, targets: Float32Array, classes: string[], show: number): void {
  const k = classes.length;
  const list = (v: ArrayLike<number>) => `[${data.decodeLabels(v, 0.5, classes).map((s) => `'${s}'`).join(', ')}]`;
  const n = Math.min(show, names.length);
  for (let i = 0; i < n; i++) {
    console.log(`File: ${names[i]}, Predicted classes: ${list(probs.subarray(i * k, (i + 1) * k))}, True classes: ${list(targets.subarray(i * k, (i + 1) * k))}`);
  }
  if (names.length > n) console.log(`… ${names.length - n} more in predictions.csv`);
}

/**
 * Grad-CAM (Selvaraju et al. 2017): the last feature map weighted by the spatially averaged gradient
 * of the class score, summed over channels and rectified. Returns the map [h, w].
 */
export async function gradCam(model: XrayModel, image: Float32Array, shape: [number, number, number, number], classIndex: number) {
  model.module.eval();
  const cam = tidy(() => {
    const features = noGrad(() => model.features(tensor(image, shape))).detach().requiresGrad_();
    const score = model.head(features).slice(1, classIndex, classIndex + 1).sum();
    score.backward();
    const grad = features.grad!;
    const weights = grad.mean([2, 3], true);
    grad.dispose();
    return noGrad(() => features.mul(weights).sum(1).relu());
  });
  const [, h, w] = cam.shape;
  const heat = await cam.data();
  cam.dispose();
  return { heat, h, w };
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

export const outPath = (dir: string, ...parts: string[]) => join(dir, ...parts);
