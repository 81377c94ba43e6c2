/**
 * Worker-thread side of DataLoader: rebuilds the dataset from its `workerInit()` description and
 * answers batch requests one at a time. Runs only as compiled JS (dist/data/loader-worker.js).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadBatch, type Batch } from './batch.js';
import type { Dataset, Sample, WorkerInit } from './dataset.js';

/** `workerData` of a loader worker. */
export interface LoaderWorkerData {
  init: WorkerInit;
  seed: number;
}

/** A request for one batch. */
export interface LoaderTask {
  id: number;
  indices: number[];
  epoch: number;
}

/** The answer to a LoaderTask. */
export type LoaderReply = { id: number; batch: Batch | null; skipped: number } | { id: number; error: string };

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

const port = parentPort;
if (port) {
  const { init, seed } = workerData as LoaderWorkerData;
  const dataset: Promise<Dataset<Sample | null>> = import(init.module).then(
    (mod: { createDataset?: (args: unknown) => Dataset<Sample | null> | Promise<Dataset<Sample | null>> }) => {
      if (typeof mod.createDataset !== 'function') throw new Error(`${init.module} does not export createDataset`);
      return mod.createDataset(init.args);
    },
  );
  dataset.catch(() => undefined); // reported with each task below
  let queue = Promise.resolve();
  const run = async ({ id, indices, epoch }: LoaderTask) => {
    let ds: Dataset<Sample | null>;
    try {
      ds = await dataset;
    } catch (e) {
      port.postMessage({ id, error: `cannot create the dataset from ${init.module}: ${message(e)}` } satisfies LoaderReply);
      return;
    }
    try {
      const { batch, skipped } = await loadBatch(ds, indices, seed, epoch);
      const transfer = batch ? [batch.images.buffer as ArrayBuffer, batch.labels.buffer as ArrayBuffer] : [];
      port.postMessage({ id, batch, skipped } satisfies LoaderReply, transfer);
    } catch (e) {
      port.postMessage({ id, error: message(e) } satisfies LoaderReply);
    }
  };
  port.on('message', (task: LoaderTask) => {
    queue = queue.then(() => run(task));
  });
}
