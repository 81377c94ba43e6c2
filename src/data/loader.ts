/** DataLoader: batches, seeded shuffling and worker-thread prefetching over a Dataset. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadBatch, type Batch } from './batch.js';
import type { Dataset, Sample, WorkerInit } from './dataset.js';
import type { LoaderReply, LoaderTask, LoaderWorkerData } from './loader-worker.js';
import { deriveSeed, Rng } from './rng.js';

/** Options of `DataLoader`. */
export interface DataLoaderOptions {
  batchSize: number;
  /** Reshuffle every epoch (default false). */
  shuffle?: boolean;
  /** Seeds the shuffle and every item's augmentation RNG (default 0). */
  seed?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Worker threads producing batches (default 0: load in the calling thread). */
  numWorkers?: number;
  /** Batches requested ahead of the consumer, in total (default 2 per worker). */
  prefetch?: number;
}

type Result = { batch: Batch | null; skipped: number };

/** Runs batch tasks on worker threads; a worker keeps the process alive only while it has work. */
class WorkerPool {
  private readonly workers: Worker[];
  private readonly busy: number[];
  private readonly pending = new Map<number, { worker: number; resolve: (r: Result) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(script: URL, data: LoaderWorkerData, n: number) {
    this.busy = new Array<number>(n).fill(0);
    this.workers = Array.from({ length: n }, (_, w) => {
      const worker = new Worker(script, { workerData: data });
      worker.unref();
      worker.on('message', (reply: LoaderReply) => this.settle(reply));
      worker.on('error', (e: unknown) => this.fail(w, `DataLoader worker ${w} crashed: ${e instanceof Error ? e.message : String(e)}`));
      worker.on('exit', (code) => this.fail(w, `DataLoader worker ${w} exited (code ${code})`));
      return worker;
    });
  }

  run(w: number, task: Omit<LoaderTask, 'id'>): Promise<Result> {
    const id = this.nextId++;
    if (this.busy[w]++ === 0) this.workers[w].ref();
    return new Promise<Result>((resolve, reject) => {
      this.pending.set(id, { worker: w, resolve, reject });
      this.workers[w].postMessage({ id, ...task } satisfies LoaderTask);
    });
  }

  async close(): Promise<void> {
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private settle(reply: LoaderReply): void {
    const task = this.pending.get(reply.id);
    if (!task) return;
    this.pending.delete(reply.id);
    if (--this.busy[task.worker] === 0) this.workers[task.worker].unref();
    if ('error' in reply) task.reject(new Error(`DataLoader worker ${task.worker}: ${reply.error}`));
    else task.resolve(reply);
  }

  private fail(w: number, why: string): void {
    for (const [id, task] of this.pending) {
      if (task.worker !== w) continue;
      this.pending.delete(id);
      task.reject(new Error(why));
    }
  }
}

/**
 * Iterates a dataset in batches, as torch.utils.data.DataLoader. Each `for await` pass is one
 * epoch (counting up from 0, or from `setEpoch`); the shuffle is seeded by (seed, epoch) and item i
 * draws its augmentations from (seed, epoch, i), so batches do not depend on `numWorkers`.
 * Items the dataset returns as null (unreadable, skipped) are dropped and counted in `skipped`,
 * so batches can be smaller than `batchSize`.
 */
export class DataLoader implements AsyncIterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly numWorkers: number;
  readonly prefetch: number;
  /** Items dropped as unreadable so far, over all epochs. */
  skipped = 0;
  private nextEpoch = 0;
  private readonly worker: { script: URL; init: WorkerInit } | null = null;

  constructor(
    readonly dataset: Dataset<Sample | null>,
    options: DataLoaderOptions,
  ) {
    const { batchSize, shuffle = false, seed = 0, dropLast = false, numWorkers = 0 } = options;
    const { prefetch = 2 * numWorkers } = options;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isSafeInteger(seed)) throw new Error(`DataLoader: seed must be an integer, got ${seed}`);
    if (!Number.isInteger(numWorkers) || numWorkers < 0) throw new Error(`DataLoader: numWorkers must be a non-negative integer, got ${numWorkers}`);
    if (numWorkers === 0 && options.prefetch !== undefined) {
      throw new Error('DataLoader: prefetch applies to worker threads only; it needs numWorkers > 0');
    }
    if (numWorkers > 0 && (!Number.isInteger(prefetch) || prefetch < 1)) {
      throw new Error(`DataLoader: prefetch must be a positive integer, got ${prefetch}`);
    }
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.numWorkers = numWorkers;
    this.prefetch = prefetch;
    if (numWorkers > 0) {
      if (!dataset.workerInit) throw new Error('DataLoader: numWorkers > 0 needs a dataset with workerInit()');
      const script = new URL('./loader-worker.js', import.meta.url);
      if (!existsSync(fileURLToPath(script))) {
        throw new Error(
          `DataLoader: numWorkers > 0 needs the compiled worker script ${fileURLToPath(script)}; ` +
            'build first (npm run build) and import the loader from dist/',
        );
      }
      this.worker = { script, init: dataset.workerInit() };
    }
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Sets the epoch of the next pass (later passes count up from it). */
  setEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`DataLoader: epoch must be a non-negative integer, got ${epoch}`);
    this.nextEpoch = epoch;
  }

  /** The dataset indices of each batch of `epoch`. */
  batchIndices(epoch: number): number[][] {
    const order = Array.from({ length: this.dataset.length }, (_, i) => i);
    if (this.shuffle) new Rng(deriveSeed(this.seed, epoch)).shuffle(order);
    return Array.from({ length: this.length }, (_, b) => order.slice(b * this.batchSize, (b + 1) * this.batchSize));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    const epoch = this.nextEpoch++;
    const batches = this.batchIndices(epoch);
    if (!this.worker) {
      for (const indices of batches) {
        const { batch, skipped } = await loadBatch(this.dataset, indices, this.seed, epoch);
        this.skipped += skipped;
        if (batch) yield batch;
      }
      return;
    }
    const pool = new WorkerPool(this.worker.script, { init: this.worker.init, seed: this.seed }, this.numWorkers);
    try {
      const inflight: Promise<Result>[] = [];
      let issued = 0;
      const issue = () => {
        const p = pool.run(issued % this.numWorkers, { indices: batches[issued], epoch });
        p.catch(() => undefined); // awaited in order below; avoid unhandled-rejection noise meanwhile
        inflight.push(p);
        issued++;
      };
      while (issued < batches.length && issued < this.prefetch) issue();
      for (let b = 0; b < batches.length; b++) {
        const { batch, skipped } = await (inflight.shift() as Promise<Result>);
        if (issued < batches.length) issue();
        this.skipped += skipped;
        if (batch) yield batch;
      }
    } finally {
      await pool.close();
    }
  }
}
