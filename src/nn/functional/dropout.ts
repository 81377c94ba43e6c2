/** Dropout and per-sample drop-connect (stochastic depth), with masks regenerated from a seed in the backward pass. */
import { dispatch } from '../../tensor/device.js';
import { record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { nextSeed } from '../../tensor/ops/creation.js';
import { forRanges, rangeBinding } from '../../tensor/split.js';
import { WG } from '../../shaders/common.js';
import { dropConnectKernel, dropoutKernel } from '../../shaders/dropout.js';

function checkP(op: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`${op}: probability p must be in [0, 1], got ${p}`);
}

/** The mask's parameters: seed, and a and b (float bits) as each kernel reads them. */
interface Mask {
  seed: number;
  a: number;
  b: number;
}

/**
 * Applies a masking kernel (`vec`: four elements per thread) to `src` (the input forward, the
 * gradient backward), in ranges when it is larger than one binding; the mask depends only on the
 * element index, so it is the same however the work is split.
 */
function masked(name: string, code: string, vec: boolean, src: Tensor, m: Mask): Tensor {
  const out = Tensor.empty(src.shape, name);
  forRanges(src.numel, (start, count) => {
    const threads = vec ? count / 4 : count;
    const u = new Uint32Array([m.seed, 0, 0, start, threads]);
    new Float32Array(u.buffer, 4, 2).set([m.a, m.b]);
    dispatch({ name, detail: `[${src.shape}]`, code, workgroups: Math.ceil(threads / WG), buffers: [rangeBinding(src, start, count), rangeBinding(out, start, count)], uniforms: u });
  });
  return out;
}

/**
 * `F.dropout`: in training, zeroes each element with probability `p` and scales the rest by
 * 1/(1 − p); the mask comes from the global generator (`manualSeed` makes it reproducible).
 * In eval mode (or with p = 0) it returns `x` itself.
 */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  checkP('dropout', p);
  if (!training || p === 0) return x;
  const m = { seed: nextSeed(), a: p, b: p === 1 ? 0 : 1 / (1 - p) };
  const vec = x.numel % 4 === 0;
  const code = dropoutKernel(vec);
  const out = masked('dropout', code, vec, x, m);
  return record('dropout', [x], out, (g) => [masked('dropout_backward', code, vec, g, m)]);
}

/**
 * Per-sample drop-connect as in EfficientNet (torchvision's `stochastic_depth`, mode 'row'): in
 * training each sample (index along dim 0) is kept with probability 1 − p and then scaled by
 * 1/(1 − p), i.e. x / keep · floor(keep + u) with one uniform u per sample. Returns `x` in eval mode or with p = 0.
 */
export function dropConnect(x: Tensor, p: number, training: boolean): Tensor {
  checkP('dropConnect', p);
  if (x.ndim < 1) throw new Error(`dropConnect: input must have a batch dim, got shape [${x.shape}]`);
  if (!training || p === 0) return x;
  const keep = 1 - p;
  const m = { seed: nextSeed(), a: keep, b: keep === 0 ? 0 : 1 / keep };
  const perSample = x.shape[0] ? x.numel / x.shape[0] : 1;
  const vec = perSample % 4 === 0;
  const code = dropConnectKernel(perSample);
  const out = masked('dropConnect', code, vec, x, m);
  return record('dropConnect', [x], out, (g) => [masked('dropConnect_backward', code, vec, g, m)]);
}
