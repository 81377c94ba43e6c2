/**
 * Multi-label classification metrics for the chest X-ray example, computed on the CPU from
 * probabilities and 0/1 targets laid out row-major as [n, k] (n samples, k classes).
 *
 * Conventions follow scikit-learn: a label is predicted positive when its probability is
 * ≥ threshold; precision/recall/F1 with a zero denominator count as 0 (`zero_division=0`); macro
 * averages are plain means over all k classes; AUROC is the Mann–Whitney U statistic with ties
 * given average ranks, and is `null` for a class whose targets are all 0 or all 1.
 */

/** Metrics of one class. */
export interface ClassMetrics {
  label: string;
  /** Number of positive targets. */
  support: number;
  precision: number;
  recall: number;
  f1: number;
  /** `null` when the split has no positives or no negatives for this class. */
  auroc: number | null;
}

/** Everything {@link summarize} reports; plain numbers and strings, so `JSON.stringify` keeps all of it. */
export interface MetricsSummary {
  n: number;
  k: number;
  threshold: number;
  /** Fraction of the n·k labels predicted correctly. */
  accuracy: number;
  precision: { micro: number; macro: number };
  recall: { micro: number; macro: number };
  f1: { micro: number; macro: number };
  /** Mean over the classes whose AUROC is defined; `null` when none is. */
  meanAuroc: number | null;
  perClass: ClassMetrics[];
}

/** One class's ROC curve, ready for plotting. */
export interface RocCurve {
  label: string;
  auroc: number;
  fpr: number[];
  tpr: number[];
}

/** Confusion counts of one class (or summed over classes). */
interface Counts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

const ratio = (num: number, den: number): number => (den === 0 ? 0 : num / den);
const f1Of = (c: Counts): number => ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);

/** Checks that probs and targets are [n, k] with finite probabilities and 0/1 targets; returns n. */
function rowsOf(probs: ArrayLike<number>, targets: ArrayLike<number>, k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new Error(`metrics: number of classes must be a positive integer, got ${k}`);
  if (probs.length !== targets.length) {
    throw new Error(`metrics: probs has ${probs.length} values but targets has ${targets.length}`);
  }
  if (probs.length % k !== 0) throw new Error(`metrics: ${probs.length} values do not form rows of k=${k} classes`);
  for (let i = 0; i < probs.length; i++) {
    if (!Number.isFinite(probs[i])) throw new Error(`metrics: probability at index ${i} is ${probs[i]}`);
    if (targets[i] !== 0 && targets[i] !== 1) throw new Error(`metrics: target at index ${i} is ${targets[i]}, expected 0 or 1`);
  }
  return probs.length / k;
}

/** Confusion counts per class at a threshold. */
function countsPerClass(probs: ArrayLike<number>, targets: ArrayLike<number>, n: number, k: number, threshold: number): Counts[] {
  const counts = Array.from({ length: k }, () => ({ tp: 0, fp: 0, fn: 0, tn: 0 }));
  for (let i = 0; i < n * k; i++) {
    const c = counts[i % k];
    const predicted = probs[i] >= threshold;
    if (targets[i] === 1) predicted ? c.tp++ : c.fn++;
    else predicted ? c.fp++ : c.tn++;
  }
  return counts;
}

/**
 * Area under the ROC curve of one class: the probability that a random positive scores above a
 * random negative, ties counting one half (Mann–Whitney U from average ranks). `null` when the
 * targets hold no positive or no negative.
 */
export function auroc(scores: ArrayLike<number>, targets: ArrayLike<number>): number | null {
  const n = rowsOf(scores, targets, 1);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start;
    while (end + 1 < n && scores[order[end + 1]] === scores[order[start]]) end++;
    // Ranks start..end (1-based: start+1..end+1) share their average.
    const rank = (start + end) / 2 + 1;
    for (let j = start; j <= end; j++) {
      if (targets[order[j]] === 1) {
        positives++;
        positiveRankSum += rank;
      }
    }
    start = end + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * ROC curve of one class: false- and true-positive rates as the threshold falls through every
 * distinct score, from (0, 0) to (1, 1). Points in the middle of a straight horizontal or
 * vertical run are dropped (they do not change the plot). `null` when AUROC is undefined.
 */
export function rocCurve(scores: ArrayLike<number>, targets: ArrayLike<number>): { fpr: number[]; tpr: number[] } | null {
  const n = rowsOf(scores, targets, 1);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += targets[i];
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  const fpr = [0];
  const tpr = [0];
  let tp = 0;
  let fp = 0;
  for (let j = 0; j < n; j++) {
    targets[order[j]] === 1 ? tp++ : fp++;
    // One point per distinct score: tied scores move together.
    if (j + 1 < n && scores[order[j + 1]] === scores[order[j]]) continue;
    const [x, y] = [fp / negatives, tp / positives];
    const last = fpr.length - 1;
    if (last >= 1 && ((fpr[last - 1] === fpr[last] && fpr[last] === x) || (tpr[last - 1] === tpr[last] && tpr[last] === y))) {
      fpr[last] = x;
      tpr[last] = y;
    } else {
      fpr.push(x);
      tpr.push(y);
    }
  }
  return { fpr, tpr };
}

/** Column `j` of a row-major [n, k] array. */
function column(values: ArrayLike<number>, n: number, k: number, j: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = values[i * k + j];
  return out;
}

/** Per-class ROC curves of [n, k] predictions, leaving out classes whose AUROC is undefined. */
export function rocCurves(probs: ArrayLike<number>, targets: ArrayLike<number>, labels: readonly string[]): RocCurve[] {
  const k = labels.length;
  const n = rowsOf(probs, targets, k);
  const curves: RocCurve[] = [];
  for (let j = 0; j < k; j++) {
    const [s, t] = [column(probs, n, k, j), column(targets, n, k, j)];
    const curve = rocCurve(s, t);
    const area = auroc(s, t);
    if (curve && area !== null) curves.push({ label: labels[j], auroc: area, ...curve });
  }
  return curves;
}

/** All metrics of [n, k] predictions against targets, one class per entry of `labels`. */
export function summarize(
  probs: ArrayLike<number>, targets: ArrayLike<number>, labels: readonly string[], threshold = 0.5,
): MetricsSummary {
  const k = labels.length;
  const n = rowsOf(probs, targets, k);
  const counts = countsPerClass(probs, targets, n, k, threshold);
  const perClass = counts.map((c, j): ClassMetrics => ({
    label: labels[j],
    support: c.tp + c.fn,
    precision: ratio(c.tp, c.tp + c.fp),
    recall: ratio(c.tp, c.tp + c.fn),
    f1: f1Of(c),
    auroc: auroc(column(probs, n, k, j), column(targets, n, k, j)),
  }));
  const total = counts.reduce((s, c) => ({ tp: s.tp + c.tp, fp: s.fp + c.fp, fn: s.fn + c.fn, tn: s.tn + c.tn }));
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
  const aurocs = perClass.flatMap((c) => (c.auroc === null ? [] : [c.auroc]));
  return {
    n, k, threshold,
    accuracy: ratio(total.tp + total.tn, n * k),
    precision: { micro: ratio(total.tp, total.tp + total.fp), macro: mean(perClass.map((c) => c.precision)) },
    recall: { micro: ratio(total.tp, total.tp + total.fn), macro: mean(perClass.map((c) => c.recall)) },
    f1: { micro: f1Of(total), macro: mean(perClass.map((c) => c.f1)) },
    meanAuroc: aurocs.length ? mean(aurocs) : null,
    perClass,
  };
}

/**
 * Running totals over the batches of an epoch, for a progress bar: mean loss, element-wise
 * accuracy, and micro precision/recall/F1 of everything seen since the last reset.
 */
export class RunningMetrics {
  private counts: Counts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  private samples = 0;
  private lossSum = 0;
  private lossSamples = 0;

  constructor(readonly numClasses: number, readonly threshold = 0.5) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new Error(`RunningMetrics: numClasses must be a positive integer, got ${numClasses}`);
    }
  }

  /** Adds a batch of [b, k] probabilities and targets; `loss` is the batch's mean loss, weighted by b. */
  update(probs: ArrayLike<number>, targets: ArrayLike<number>, loss?: number): void {
    const b = rowsOf(probs, targets, this.numClasses);
    for (const c of countsPerClass(probs, targets, b, this.numClasses, this.threshold)) {
      this.counts.tp += c.tp;
      this.counts.fp += c.fp;
      this.counts.fn += c.fn;
      this.counts.tn += c.tn;
    }
    this.samples += b;
    if (loss !== undefined) {
      if (!Number.isFinite(loss)) throw new Error(`RunningMetrics: batch loss is ${loss}`);
      this.lossSum += loss * b;
      this.lossSamples += b;
    }
  }

  /** Samples seen since the last reset. */
  get count(): number {
    return this.samples;
  }
  /** Mean loss per sample over the batches that reported one (NaN before any). */
  get loss(): number {
    return this.lossSamples === 0 ? Number.NaN : this.lossSum / this.lossSamples;
  }
  get accuracy(): number {
    return ratio(this.counts.tp + this.counts.tn, this.samples * this.numClasses);
  }
  get precision(): number {
    return ratio(this.counts.tp, this.counts.tp + this.counts.fp);
  }
  get recall(): number {
    return ratio(this.counts.tp, this.counts.tp + this.counts.fn);
  }
  get f1(): number {
    return f1Of(this.counts);
  }

  reset(): void {
    this.counts = { tp: 0, fp: 0, fn: 0, tn: 0 };
    this.samples = this.lossSum = this.lossSamples = 0;
  }
}
