/** Gradient clipping by total norm (torch.nn.utils.clip_grad_norm_), entirely on the GPU. */
import { noGrad } from '../tensor/autograd.js';
import { tensor } from '../tensor/ops/creation.js';
import { abs, map, mapInPlace, pow, sqrt, square } from '../tensor/ops/elementwise.js';
import { max, sum } from '../tensor/ops/reduce.js';
import { stack } from '../tensor/ops/shape.js';
import { tidy } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';

/** Σ|g|^p of one gradient (max |g| for the infinity norm), as a 0-d tensor. */
function partialNorm(g: Tensor, normType: number): Tensor {
  if (normType === Infinity) return max(abs(g));
  if (normType === 2) return sum(square(g));
  if (normType === 1) return sum(abs(g));
  return sum(map('abs_pow', (a, p) => `pow(abs(${a}), ${p})`, [g, normType]));
}

/**
 * Scales the gradients of `params` in place so that their total `normType`-norm (over all gradients
 * together, as if concatenated) is at most `maxNorm`: every gradient is multiplied by
 * min(1, maxNorm / (norm + 1e-6)). The norm, the coefficient and the scaling all run on the GPU and
 * nothing is read back: the coefficient stays in a one-element buffer that the scaling kernels read.
 * Parameters without a gradient are ignored. Returns the total norm before clipping as a 0-d tensor.
 */
export function clipGradNorm(params: Tensor | Tensor[], maxNorm: number, normType = 2): Tensor {
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm) || maxNorm < 0) throw new Error(`clipGradNorm: maxNorm must be a number >= 0, got ${maxNorm}`);
  if (typeof normType !== 'number' || !(normType > 0)) throw new Error(`clipGradNorm: normType must be > 0 (or Infinity), got ${normType}`);
  const list = params instanceof Tensor ? [params] : params;
  if (!Array.isArray(list)) throw new Error('clipGradNorm: params must be a Tensor or an array of Tensors');
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new Error(`clipGradNorm: params[${i}] is not a Tensor`);
  });
  const grads = list.flatMap((p) => (p.grad && p.grad.numel > 0 ? [p.grad] : []));
  if (!grads.length) return tensor(0);
  return noGrad(() =>
    tidy(() => {
      const parts = stack(grads.map((g) => partialNorm(g, normType)));
      const total = normType === Infinity ? max(parts) : normType === 2 ? sqrt(sum(parts)) : normType === 1 ? sum(parts) : pow(sum(parts), 1 / normType);
      const coef = map('clip_coef', (n, m) => `min(T(1.0), ${m} / (${n} + T(1e-6)))`, [total, maxNorm]);
      for (const g of grads) mapInPlace('clip_scale', g, (t, c) => `${t} * ${c}`, [coef]);
      return total;
    }),
  );
}
