import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { rocCurves, summarize } from '../examples/xray/metrics.js';
import { jet, writeHeatmapOverlay, writeHtmlReport, writeRocCurves, writeTrainingCurves } from '../examples/xray/report.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xray-report-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readPng(path: string): pngjs.PNG {
  expect(statSync(path).size).toBeGreaterThan(0);
  return pngjs.PNG.sync.read(readFileSync(path));
}

/** Number of distinct RGB colours: a blank or failed render has one or two. */
function colours(png: pngjs.PNG): number {
  const seen = new Set<number>();
  for (let i = 0; i < png.data.length; i += 4) seen.add((png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2]);
  return seen.size;
}

const labels = ['Atelectasis', 'Cardiomegaly', 'Hernia'];
// 6 samples × 3 classes; Hernia never positive, so it has no AUROC.
const probs = new Float32Array([0.9, 0.2, 0.1, 0.7, 0.6, 0.3, 0.2, 0.8, 0.1, 0.4, 0.3, 0.2, 0.6, 0.1, 0.6, 0.1, 0.7, 0.2]);
const targets = new Float32Array([1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0]);

describe('charts', () => {
  it('draws training curves, tolerating epochs without a mean AUROC', async () => {
    const path = join(dir, 'curves.png');
    await writeTrainingCurves(path, [
      { epoch: 1, trainLoss: 0.6, valLoss: 0.55, valMeanAuroc: null },
      { epoch: 2, trainLoss: 0.4, valLoss: 0.45, valMeanAuroc: 0.81 },
      { epoch: 3, trainLoss: 0.3, valLoss: 0.41, valMeanAuroc: 0.9 },
    ]);
    const png = readPng(path);
    expect(png.width).toBeGreaterThan(600);
    expect(colours(png)).toBeGreaterThan(10);
  });

  it('rejects a history with a non-finite loss', async () => {
    await expect(writeTrainingCurves(join(dir, 'bad.png'), [{ epoch: 1, trainLoss: Number.NaN, valLoss: 1, valMeanAuroc: 0.5 }]))
      .rejects.toThrow(/entry 0 has trainLoss = NaN/);
  });

  it('draws ROC curves', async () => {
    const path = join(dir, 'roc.png');
    const rocs = rocCurves(probs, targets, labels);
    expect(rocs.map((r) => r.label)).toEqual(['Atelectasis', 'Cardiomegaly']);
    await writeRocCurves(path, rocs);
    const png = readPng(path);
    expect(png.width).toBeGreaterThan(400);
    expect(colours(png)).toBeGreaterThan(10);
  });
});

describe('writeHeatmapOverlay', () => {
  it('upsamples bilinearly with half-pixel centres and colours by the jet map', () => {
    const path = join(dir, 'cam.png');
    // Heat [0, 1] across 2 columns → 4 columns at source x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    writeHeatmapOverlay(path, new Float32Array(8).fill(0.3), 2, 4, new Float32Array([0, 1]), 1, 2, 1);
    const png = readPng(path);
    expect([png.width, png.height]).toEqual([4, 2]);
    const expected = [0, 0.25, 0.75, 1];
    for (let row = 0; row < 2; row++) {
      expected.forEach((t, col) => {
        const k = (row * 4 + col) * 4;
        expect([png.data[k], png.data[k + 1], png.data[k + 2]]).toEqual(jet(t).map((c) => Math.round(255 * c)));
      });
    }
  });

  it('blends the normalised grey image under the colours', () => {
    const path = join(dir, 'blend.png');
    // Grey 0..3 normalises to 0..1; a constant heat map normalises to 0 (jet blue [0, 0, 0.5]).
    writeHeatmapOverlay(path, new Float32Array([0, 1, 2, 3]), 2, 2, new Float32Array([5]), 1, 1, 0.5);
    const png = readPng(path);
    const pixel = (i: number): number[] => [png.data[4 * i], png.data[4 * i + 1], png.data[4 * i + 2]];
    expect(pixel(0)).toEqual([0, 0, Math.round(255 * 0.25)]);
    expect(pixel(3)).toEqual([Math.round(255 * 0.5), Math.round(255 * 0.5), Math.round(255 * 0.75)]);
  });

  it('jet runs from dark blue to dark red', () => {
    expect(jet(0)).toEqual([0, 0, 0.5]);
    expect(jet(0.5)).toEqual([0.5, 1, 0.5]);
    expect(jet(1)).toEqual([0.5, 0, 0]);
  });

  it('rejects mismatched sizes', () => {
    expect(() => writeHeatmapOverlay(join(dir, 'x.png'), new Float32Array(5), 2, 2, new Float32Array(1), 1, 1))
      .toThrow(/grey has 5 values, expected 2x2/);
  });
});

describe('writeHtmlReport', () => {
  it('writes a page with the metrics table and relative image links', async () => {
    const metrics = summarize(probs, targets, labels);
    await writeRocCurves(join(dir, 'figs', 'roc.png'), rocCurves(probs, targets, labels));
    const path = writeHtmlReport(dir, {
      title: 'Run <1>',
      config: { epochs: 3, model: 'resnet18', lr: 0.001 },
      metrics,
      images: [
        { title: 'ROC', file: 'figs/roc.png' },
        { title: 'Curves', file: join(dir, 'curves.png') },
      ],
    });
    expect(path).toBe(join(dir, 'index.html'));
    const html = readFileSync(path, 'utf8');
    expect(html).toContain('<title>Run &lt;1&gt;</title>');
    expect(html).toContain('src="figs/roc.png"');
    expect(html).toContain('src="curves.png"');
    for (const c of metrics.perClass) expect(html).toContain(`<td>${c.label}</td>`);
    expect(html).toContain(`<td>${metrics.perClass[0].auroc!.toFixed(3)}</td>`);
    expect(html).toContain('<td>resnet18</td>');
    expect(metrics.perClass[2].auroc).toBeNull();
    expect(html).toMatch(/<td>Hernia<\/td><td>0<\/td>(<td>[^<]*<\/td>){3}<td>—<\/td>/);
  });

  it('refuses to link a missing image', () => {
    const metrics = summarize(probs, targets, labels);
    expect(() => writeHtmlReport(dir, { title: 't', config: {}, metrics, images: [{ title: 'gone', file: 'nope.png' }] }))
      .toThrow(/image 'gone' not found/);
  });
});
