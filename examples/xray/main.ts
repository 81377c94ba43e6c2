/**
 * `npm run example:xray`: multi-label chest X-ray classification on the NIH ChestX-ray14 layout, the
 * TypeScript counterpart of the original PyTorch project (transforms, dataset, EfficientNet/ResNet
 * with a replaced head, Adam, early stopping, tqdm-like progress, per-image test printout), plus
 * AUROC, predictions, pictures and a report. Without --data-dir it runs on a synthetic dataset.
 */
import { existsSync } from 'node:fs';
import { type Tensor, data, init, keep, manualSeed, optim, tensor } from '@lib/nn';
import { type Config, parseArgs, resolveConfig } from './cli.js';
import { loadCheckpoint, saveCheckpoint, type RunState } from './checkpoint.js';
import { locateData, prepareData, type XrayData } from './dataset.js';
import { rocCurves, summarize, type MetricsSummary } from './metrics.js';
import { buildModel, type XrayModel } from './model.js';
import { ensureDir, gradCam, outPath, printPredictions, writeMetrics, writePredictions } from './outputs.js';
import { type EpochRecord, writeHeatmapOverlay, writeHtmlReport, writeRocCurves, writeTrainingCurves } from './report.js';
import { NonFiniteLossError, runPass } from './train.js';

const log = (s: string) => console.log(s);
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

async function main(): Promise<void> {
  const parsed = parseArgs(process.argv.slice(2));
  const info = await init();
  const { config, why } = resolveConfig(parsed, info.isCpu);
  log(`device: ${info.adapter}${info.isCpu ? ' (CPU driver)' : ''}`);
  log(`configuration: ${JSON.stringify(config)}`);
  for (const w of why) log(`  because ${w}`);
  manualSeed(config.seed);

  const d = prepareData(config, locateData(config, log), log);
  const out = ensureDir(config.out);
  const model = buildModel(config.model, d.classes.length, config.imageSize);
  log(`model: ${config.model}, ${model.module.numParameters().toLocaleString('en-US')} parameters, ${d.classes.length} outputs`);
  const optimizer = new optim.Adam(model.module.parameters(), { lr: config.lr, weightDecay: config.weightDecay });
  const scheduler = config.scheduler === 'plateau' ? new optim.ReduceLROnPlateau(optimizer, { factor: 0.3, patience: 1 })
    : config.scheduler === 'cosine' ? new optim.CosineAnnealingLR(optimizer, { tMax: config.epochs }) : null;
  const posWeight = config.posWeight ? keep(tensor(d.positives.map((p) => Math.min(50, (d.splits.train.length - p) / Math.max(p, 1))))) : undefined;

  const lastPath = outPath(out, 'last.safetensors');
  const bestPath = outPath(out, 'best.safetensors');
  let run: RunState = { epoch: 0, bestValLoss: Infinity, bestEpoch: 0, earlyStopCounter: 0, history: [], config: { ...config }, scheduler: null };
  if (config.resume) {
    if (!existsSync(lastPath)) throw new Error(`--resume: no checkpoint at ${lastPath}`);
    run = await loadCheckpoint(lastPath, model.module, optimizer);
    if (scheduler && run.scheduler) scheduler.loadStateDict(run.scheduler);
    log(`resumed from ${lastPath}: ${run.epoch} epoch(s) done, best validation loss ${run.bestValLoss.toFixed(4)} at epoch ${run.bestEpoch}`);
  }
  const valMetrics = await train(config, d, model, optimizer, scheduler, posWeight, run, lastPath, bestPath);

  if (existsSync(bestPath)) {
    await loadCheckpoint(bestPath, model.module, optimizer);
    log(`testing the best model (epoch ${run.bestEpoch}, validation loss ${run.bestValLoss.toFixed(4)})`);
  }
  const test = await runPass(model, d.loaders.test, { label: 'Test', numClasses: d.classes.length, posWeight, collect: true, maxBatches: config.maxBatches ?? undefined });
  printPredictions(test.names, test.probs, test.targets, d.classes, config.show);
  const testMetrics = summarize(test.probs, test.targets, d.classes);
  log(`Test Loss: ${test.loss.toFixed(4)}, Test Accuracy: ${pct(testMetrics.accuracy)}, Test F1 (micro/macro): ${pct(testMetrics.f1.micro)} / ${pct(testMetrics.f1.macro)}, ` +
    `Test mean AUROC: ${testMetrics.meanAuroc === null ? 'n/a' : testMetrics.meanAuroc.toFixed(4)}`);
  for (const c of testMetrics.perClass) log(`  ${c.label.padEnd(18)} AUROC ${c.auroc === null ? ' null ' : c.auroc.toFixed(4)}  F1 ${c.f1.toFixed(3)}  support ${c.support}`);
  const skipped = d.loaders.train.skipped + d.loaders.val.skipped + d.loaders.test.skipped;
  if (skipped > 0) log(`${skipped} unreadable image(s) were skipped`);

  await writeOutputs(config, d, model, run.history, { validation: valMetrics, test: testMetrics }, test);
  log(`outputs in ${out}: predictions.csv, metrics.json, index.html (report with curves and Grad-CAM), best.safetensors`);
}

async function train(
  config: Config, d: XrayData, model: XrayModel, optimizer: optim.Adam, scheduler: optim.ReduceLROnPlateau | optim.CosineAnnealingLR | null,
  posWeight: Tensor | undefined, run: RunState, lastPath: string, bestPath: string,
): Promise<MetricsSummary | null> {
  let valMetrics: MetricsSummary | null = null;
  const k = d.classes.length;
  for (let epoch = run.epoch + 1; epoch <= config.epochs; epoch++) {
    if (run.earlyStopCounter >= config.patience) break;
    log(`Epoch ${epoch}/${config.epochs}`);
    manualSeed(config.seed * 1000 + epoch); // dropout masks: the same whether or not the run was resumed
    d.loaders.train.setEpoch(epoch);
    let tr, val;
    try {
      tr = await runPass(model, d.loaders.train, { label: 'Training', numClasses: k, optimizer, posWeight, maxBatches: config.maxBatches ?? undefined });
      log(`Training Loss: ${tr.loss.toFixed(4)}, Training Accuracy: ${pct(tr.accuracy)}, Training F1: ${pct(tr.f1)} (${(tr.seconds).toFixed(1)} s)`);
      val = await runPass(model, d.loaders.val, { label: 'Validation', numClasses: k, posWeight, collect: true, maxBatches: config.maxBatches ?? undefined });
    } catch (e) {
      if (e instanceof NonFiniteLossError) {
        log(`${e.message}. The last good checkpoints are kept: ${lastPath}, ${bestPath}`);
        break;
      }
      throw e;
    }
    valMetrics = summarize(val.probs, val.targets, d.classes);
    log(`Validation Loss: ${val.loss.toFixed(4)}, Validation Accuracy: ${pct(val.accuracy)}, Validation Precision: ${pct(val.precision)}, ` +
      `Validation Recall: ${pct(val.recall)}, Validation F1: ${pct(val.f1)}, Validation mean AUROC: ${valMetrics.meanAuroc?.toFixed(4) ?? 'n/a'}`);
    const record: EpochRecord = { epoch, trainLoss: tr.loss, valLoss: val.loss, valMeanAuroc: valMetrics.meanAuroc };
    run.history.push(record);
    run.epoch = epoch;
    if (val.loss < run.bestValLoss) {
      run.bestValLoss = val.loss;
      run.bestEpoch = epoch;
      run.earlyStopCounter = 0;
      await saveCheckpoint(bestPath, model.module, optimizer, run);
    } else run.earlyStopCounter++;
    if (scheduler instanceof optim.ReduceLROnPlateau) scheduler.step(val.loss);
    else scheduler?.step();
    run.scheduler = scheduler?.stateDict() ?? null;
    await saveCheckpoint(lastPath, model.module, optimizer, run);
    if (run.earlyStopCounter >= config.patience) {
      log('Early Stopping: No improvement in validation loss. Training stopped.');
      break;
    }
  }
  return valMetrics;
}

async function writeOutputs(
  config: Config, d: XrayData, model: XrayModel, history: EpochRecord[], metrics: Record<string, MetricsSummary | null>,
  test: { names: string[]; probs: Float32Array; targets: Float32Array },
): Promise<void> {
  const out = config.out;
  writePredictions(outPath(out, 'predictions.csv'), test.names, test.probs, test.targets, d.classes);
  writeMetrics(outPath(out, 'metrics.json'), Object.fromEntries(Object.entries(metrics).filter(([, v]) => v)) as Record<string, MetricsSummary>);
  const images: { title: string; file: string }[] = [];
  if (history.length) {
    await writeTrainingCurves(outPath(out, 'training-curves.png'), history);
    images.push({ title: 'Training curves', file: 'training-curves.png' });
  }
  await writeRocCurves(outPath(out, 'roc-curves.png'), rocCurves(test.probs, test.targets, d.classes));
  images.push({ title: 'ROC curves (test)', file: 'roc-curves.png' });
  for (const cam of await gradCams(config, d, model, test)) images.push(cam);
  writeHtmlReport(out, { title: `Chest X-ray classification — ${config.model}`, config: { ...config }, metrics: metrics.test!, images });
}

/**
 * Grad-CAM for up to `config.gradcam` test images, each showing a different finding: for every
 * class, the positive test image the model scores highest.
 */
async function gradCams(config: Config, d: XrayData, model: XrayModel, test: { names: string[]; probs: Float32Array; targets: Float32Array }) {
  const k = d.classes.length;
  const picks: { index: number; cls: number; p: number }[] = [];
  for (let c = 0; c < k; c++) {
    let best = -1;
    for (let i = 0; i < test.names.length; i++) {
      if (test.targets[i * k + c] === 1 && (best < 0 || test.probs[i * k + c] > test.probs[best * k + c])) best = i;
    }
    if (best >= 0) picks.push({ index: best, cls: c, p: test.probs[best * k + c] });
  }
  picks.sort((a, b) => b.p - a.p);
  const byName = new Map(d.splits.test.map((r, i) => [r.imageIndex, i]));
  const out: { title: string; file: string }[] = [];
  for (const { index, cls } of picks.slice(0, config.gradcam)) {
    const name = test.names[index];
    const item = await d.datasets.test.getItem(byName.get(name)!, new data.Rng(0));
    if (!item) continue;
    const { channels, height, width } = item.image;
    const cam = await gradCam(model, item.image.data, [1, channels, height, width], cls);
    // drawn over the original image at a size a person can read (at least 256 px)
    const original = data.readImage(d.paths.get(name)!);
    const side = Math.max(256, original.height);
    const grey = data.functional.resize(original, [side, side]).data;
    const file = `gradcam-${name.replace(/\.png$/, '')}-${d.classes[cls]}.png`;
    writeHeatmapOverlay(outPath(config.out, file), grey, side, side, cam.heat, cam.h, cam.w);
    out.push({ title: `Grad-CAM ${name}: ${d.classes[cls]}`, file });
  }
  return out;
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.DEBUG && e instanceof Error) console.error(e.stack);
    process.exit(1);
  },
);
