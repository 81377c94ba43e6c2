/** Producing one collated batch from a dataset: shared by the loader and its worker threads. */
import type { Dataset, Sample } from './dataset.js';
import { deriveSeed, Rng } from './rng.js';

/** A collated batch: images [n, c, h, w] and labels [n, k], row-major. */
export interface Batch {
  images: Float32Array;
  shape: [number, number, number, number];
  labels: Float32Array;
  labelShape: [number, number];
  names: string[];
}

/** Stacks samples of equal shape into one batch. */
export function collate(samples: readonly Sample[]): Batch {
  const first = samples[0];
  if (!first) throw new Error('collate: no samples');
  const { channels: c, height: h, width: w } = first.image;
  const k = first.label.length;
  const size = c * h * w;
  const images = new Float32Array(samples.length * size);
  const labels = new Float32Array(samples.length * k);
  samples.forEach((s, n) => {
    const { channels, height, width } = s.image;
    if (channels !== c || height !== h || width !== w || s.image.data.length !== size) {
      throw new Error(`collate: ${s.name} is ${channels}x${height}x${width} but ${first.name} is ${c}x${h}x${w}`);
    }
    if (s.label.length !== k) throw new Error(`collate: ${s.name} has ${s.label.length} labels but ${first.name} has ${k}`);
    images.set(s.image.data, n * size);
    labels.set(s.label, n * k);
  });
  return { images, shape: [samples.length, c, h, w], labels, labelShape: [samples.length, k], names: samples.map((s) => s.name) };
}

/**
 * Loads and collates the items `indices`, item i drawing from Rng(deriveSeed(seed, epoch, i)), so
 * the result does not depend on which thread runs it. Items the dataset returns as null
 * (unreadable, skipped) are left out and counted; `batch` is null when all were skipped.
 */
export async function loadBatch(
  dataset: Dataset<Sample | null>,
  indices: readonly number[],
  seed: number,
  epoch: number,
): Promise<{ batch: Batch | null; skipped: number }> {
  const samples: Sample[] = [];
  for (const i of indices) {
    let sample: Sample | null;
    try {
      sample = await dataset.getItem(i, new Rng(deriveSeed(seed, epoch, i)));
    } catch (e) {
      const name = dataset.itemName ? ` (${dataset.itemName(i)})` : '';
      throw new Error(`item ${i}${name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (sample) samples.push(sample);
  }
  return { batch: samples.length > 0 ? collate(samples) : null, skipped: indices.length - samples.length };
}
