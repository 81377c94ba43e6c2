/** Matrix multiplication with PyTorch semantics (1-D operands, batched with broadcast batch dims). */
import { deviceInfo, dispatch } from '../device.js';
import { record } from '../autograd.js';
import { Tensor } from '../tensor.js';
import { matmulKernel } from '../../shaders/matmul.js';
import { broadcastStrides } from '../../shaders/elementwise.js';
import { broadcastShapes } from './elementwise.js';
import { zeros } from './creation.js';
import { reshape } from './shape.js';

/**
 * op(a) · op(b) for tensors of at least 2 dims, where op transposes the last two dims when the flag is
 * set — read from the stored layout, without a copy. Batch dims broadcast. No autograd.
 * `opts.subgroups: false` forces the kernel without subgroup operations (used on adapters without them; tests compare both).
 */
export function mm(a: Tensor, b: Tensor, transA = false, transB = false, opts: { subgroups?: boolean } = {}): Tensor {
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [k2, n] = transB ? [bc, br] : [br, bc];
  if (k !== k2) throw new Error(`matmul: shapes [${a.shape}] and [${b.shape}] are incompatible (inner dims ${k} and ${k2})`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchShape = broadcastShapes('matmul', batchA, batchB);
  const outShape = [...batchShape, m, n];
  if (k === 0) return zeros(outShape);
  const out = Tensor.empty(outShape, 'matmul');
  if (out.numel === 0) return out;
  const kern = matmulKernel({
    m, n, k, transA, transB, batchShape,
    batchStridesA: broadcastStrides(batchA, batchShape),
    batchStridesB: broadcastStrides(batchB, batchShape),
    subgroups: (opts.subgroups ?? true) && deviceInfo().subgroups,
  });
  dispatch({
    name: 'matmul', detail: `[${a.shape}]${transA ? 'ᵀ' : ''} x [${b.shape}]${transB ? 'ᵀ' : ''}`,
    code: kern.code, workgroups: kern.workgroups, buffers: [a.buffer, b.buffer, out.buffer], uniforms: kern.uniforms,
  });
  return out;
}

/** Matrix product like `torch.matmul`: 1-D operands are treated as row/column vectors and squeezed back. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: both operands need at least 1 dim, got [${a.shape}] and [${b.shape}]`);
  if (a.ndim === 1 && b.ndim === 1) return reshape(matmul(reshape(a, [1, a.shape[0]]), reshape(b, [b.shape[0], 1])), []);
  if (a.ndim === 1) {
    const r = matmul(reshape(a, [1, a.shape[0]]), b);
    return reshape(r, [...r.shape.slice(0, -2), r.shape[r.ndim - 1]]);
  }
  if (b.ndim === 1) {
    const r = matmul(a, reshape(b, [b.shape[0], 1]));
    return reshape(r, r.shape.slice(0, -1));
  }
  const out = mm(a, b);
  return record('matmul', [a, b], out, (g) => [mm(g, b, false, true), mm(a, g, true, false)]);
}
