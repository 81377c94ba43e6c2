/**
 * One pass over a loader, training or evaluating, with the seed's tqdm-like progress bar.
 * The GPU step of batch k+1 is recorded before the read-back of batch k is awaited, so the device
 * never waits for the host; nothing inside a step reads back.
 */
import cliProgress from 'cli-progress';
import { type Tensor, data, nn, noGrad, optim, tensor, tidy } from '@lib/nn';
import { RunningMetrics } from './metrics.js';
import type { XrayModel } from './model.js';

/** Raised when the loss stops being a finite number; the caller keeps its last good checkpoint. */
export class NonFiniteLossError extends Error {}

export interface PassResult {
  loss: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** Probabilities and targets, [n, k] row-major, with image names (evaluation passes only). */
  probs: Float32Array;
  targets: Float32Array;
  names: string[];
  seconds: number;
}

export interface PassOptions {
  label: string;
  numClasses: number;
  posWeight?: Tensor;
  /** Present for a training pass. */
  optimizer?: optim.Optimizer;
  /** Keep all probabilities (for AUROC and predictions). */
  collect?: boolean;
  /** Stop after this many batches (smoke runs). */
  maxBatches?: number;
}

const fmt = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : String(v));

function progressBar(label: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      format: `${label}: {percentage}% |{bar}| {value}/{total} [{duration_formatted}<{eta_formatted}, {speed}it/s, acc={acc}, f1={f1}, loss={loss}, precision={precision}, recall={recall}]`,
      barsize: 20,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
}

/** Runs the model over every batch of `loader`; trains when `opts.optimizer` is given. */
export async function runPass(model: XrayModel, loader: data.DataLoader, opts: PassOptions): Promise<PassResult> {
  const training = !!opts.optimizer;
  model.module.train(training);
  const running = new RunningMetrics(opts.numClasses);
  const probsOut: Float32Array[] = [];
  const targetsOut: Float32Array[] = [];
  const names: string[] = [];
  const total = opts.maxBatches ? Math.min(opts.maxBatches, loader.length) : loader.length;
  const bar = progressBar(opts.label);
  const start = performance.now();
  bar.start(total, 0, { acc: '-', f1: '-', loss: '-', precision: '-', recall: '-', speed: '0.00' });
  let pending: Promise<void> | null = null;
  let done = 0;
  try {
    for await (const batch of loader) {
      if (done >= total) break;
      const { loss, probs } = step(model, batch, opts);
      const targets = batch.labels;
      const read: Promise<void> = Promise.all([loss.data(), probs.data()]).then(([l, p]) => {
        loss.dispose();
        probs.dispose();
        if (!Number.isFinite(l[0])) throw new NonFiniteLossError(`${opts.label}: the loss became ${l[0]} at batch ${done + 1}; stopping`);
        running.update(p, targets, l[0]);
        if (opts.collect) {
          probsOut.push(p);
          targetsOut.push(targets);
          names.push(...batch.names);
        }
        done++;
        const secs = (performance.now() - start) / 1000;
        bar.update(done, {
          acc: fmt(running.accuracy), f1: fmt(running.f1), loss: fmt(running.loss), precision: fmt(running.precision),
          recall: fmt(running.recall), speed: fmt(done / secs, 2),
        });
      });
      const previous: Promise<void> | null = pending;
      pending = read;
      if (previous) await previous;
    }
    if (pending) await pending;
  } finally {
    bar.stop();
  }
  const concat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };
  return {
    loss: running.loss, accuracy: running.accuracy, precision: running.precision, recall: running.recall, f1: running.f1,
    probs: concat(probsOut), targets: concat(targetsOut), names, seconds: (performance.now() - start) / 1000,
  };
}

/** Records one batch: forward, loss, and (training) backward and optimiser step. Returns loss and probabilities. */
function step(model: XrayModel, batch: data.Batch, opts: PassOptions): { loss: Tensor; probs: Tensor } {
  return tidy(() => {
    const x = tensor(batch.images, batch.shape);
    const y = tensor(batch.labels, batch.labelShape);
    const run = () => {
      const logits = model.module.forward(x);
      const loss = nn.functional.binaryCrossEntropyWithLogits(logits, y, { posWeight: opts.posWeight });
      return { loss, logits };
    };
    if (!opts.optimizer) {
      const { loss, logits } = noGrad(run);
      return { loss, probs: logits.sigmoid() };
    }
    const { loss, logits } = run();
    opts.optimizer.zeroGrad();
    loss.backward();
    opts.optimizer.step();
    return { loss: loss.detach(), probs: noGrad(() => logits.detach().sigmoid()) };
  });
}
