/** Dropout and per-sample drop-connect (stochastic depth), with masks regenerated from a seed in the backward pass. */
import { dispatch } from '../../tensor/device.js';
import { record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { nextSeed } from '../../tensor/ops/creation.js';
import { dropConnectKernel, dropoutKernel } from '../../shaders/dropout.js';

function checkP(op: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`${op}: probability p must be in [0, 1], got ${p}`);
}

/** Uniform block (seed, a, b, 0) with a and b as float bits. */
function uniforms(seed: number, a: number, b: number): Uint32Array {
  const u = new Uint32Array(4);
  u[0] = seed;
  new Float32Array(u.buffer, 4, 2).set([a, b]);
  return u;
}

/** Applies a masking kernel to `src` (the input forward, the gradient backward) with fixed uniforms. */
function masked(name: string, k: { code: string; workgroups: number }, src: Tensor, u: Uint32Array): Tensor {
  const out = Tensor.empty(src.shape, name);
  if (out.numel) dispatch({ name, detail: `[${src.shape}]`, code: k.code, workgroups: k.workgroups, buffers: [src.buffer, out.buffer], uniforms: u });
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
  const u = uniforms(nextSeed(), p, p === 1 ? 0 : 1 / (1 - p));
  const k = dropoutKernel(x.numel);
  const out = masked('dropout', k, x, u);
  return record('dropout', [x], out, (g) => [masked('dropout_backward', k, g, u)]);
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
  const u = uniforms(nextSeed(), keep, keep === 0 ? 0 : 1 / keep);
  const samples = x.shape[0];
  const k = dropConnectKernel(samples, samples ? x.numel / samples : 0);
  const out = masked('dropConnect', k, x, u);
  return record('dropConnect', [x], out, (g) => [masked('dropConnect_backward', k, g, u)]);
}
