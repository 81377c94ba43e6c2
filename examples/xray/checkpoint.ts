/**
 * Checkpoints: the model's state dict, the optimiser's state and the run's progress in ONE
 * safetensors file, written to a temporary name and renamed, so a crash never leaves a half-written
 * checkpoint and the previous one stays valid until the new one is complete.
 */
import { existsSync } from 'node:fs';
import { type Tensor, nn, optim } from '@lib/nn';
import type { EpochRecord } from './report.js';

/** What a checkpoint remembers besides tensors. */
export interface RunState {
  /** Last completed epoch (1-based). */
  epoch: number;
  bestValLoss: number;
  bestEpoch: number;
  earlyStopCounter: number;
  history: EpochRecord[];
  config: Record<string, unknown>;
  /** The learning-rate scheduler's state, so a resumed run follows the same schedule. */
  scheduler: optim.SchedulerStateDict | null;
}

type ScalarState = Record<string, Record<string, number>>;

/** Writes model + optimiser + run state to `path` atomically. */
export async function saveCheckpoint(path: string, model: nn.Module, optimizer: optim.Optimizer, run: RunState): Promise<void> {
  const osd = optimizer.stateDict();
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of model.stateDict()) tensors.set(`model.${k}`, v);
  const scalars: ScalarState = {};
  for (const [idx, st] of Object.entries(osd.state)) {
    for (const [key, v] of Object.entries(st)) {
      if (typeof v === 'number') (scalars[idx] ??= {})[key] = v;
      else tensors.set(`optimizer.${idx}.${key}`, v);
    }
  }
  await nn.saveSafetensors(path, tensors, {
    run: JSON.stringify(run),
    optimizer: JSON.stringify({ scalars, paramGroups: osd.paramGroups }),
  });
}

/** Restores model and optimiser from `path`; returns the run state. */
export async function loadCheckpoint(path: string, model: nn.Module, optimizer: optim.Optimizer): Promise<RunState> {
  if (!existsSync(path)) throw new Error(`checkpoint not found: ${path}`);
  const meta = await nn.safetensorsMetadata(path);
  if (!meta.run || !meta.optimizer) throw new Error(`${path} is not a checkpoint of this example (no run/optimizer metadata)`);
  const tensors = await nn.loadSafetensors(path);
  try {
    const modelSd = new Map<string, Tensor>();
    for (const [k, v] of tensors) if (k.startsWith('model.')) modelSd.set(k.slice(6), v);
    model.loadStateDict(modelSd, { strict: true });
    const { scalars, paramGroups } = JSON.parse(meta.optimizer) as { scalars: ScalarState; paramGroups: optim.OptimizerStateDict['paramGroups'] };
    const state: optim.OptimizerStateDict['state'] = {};
    for (const [idx, s] of Object.entries(scalars)) state[idx] = { ...s };
    for (const [k, v] of tensors) {
      const m = /^optimizer\.(\d+)\.(.+)$/.exec(k);
      if (m) (state[m[1]] ??= {})[m[2]] = v;
    }
    optimizer.loadStateDict({ state, paramGroups });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return JSON.parse(meta.run) as RunState;
}
