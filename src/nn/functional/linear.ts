/** `linear` (y = x·Wᵀ + b) with PyTorch semantics and its backward, on the matmul kernel's transposed operands. */
import { record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { map, mm, sum } from '../../tensor/ops/index.js';

/**
 * Like `torch.nn.functional.linear`: x [..., in], weight [out, in], optional bias [out]; returns
 * [..., out]. The weight is read transposed in place (no copy). Differentiable in all three:
 * dx = g·W, dW = gᵀ·x, db = Σ g over the leading dims.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.ndim !== 2) throw new Error(`linear: weight must be [out, in], got [${weight.shape}]`);
  const [outF, inF] = weight.shape;
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(`linear: input [${x.shape}] must end in ${inF} features to match weight [${weight.shape}]`);
  }
  const b = bias ?? null;
  if (b && (b.ndim !== 1 || b.shape[0] !== outF)) throw new Error(`linear: bias must be [${outF}], got [${b.shape}] (weight [${weight.shape}])`);
  const rows = x.numel / Math.max(inF, 1);
  const outShape = [...x.shape.slice(0, -1), outF];
  const x2 = Tensor.view(x, [rows, inF]);
  const y2 = mm(x2, weight, false, true);
  x2.dispose();
  const yb = b ? map('linear_bias', (y, c) => `${y} + ${c}`, [y2, b]) : y2;
  if (yb !== y2) y2.dispose();
  const out = Tensor.view(yb, outShape);
  yb.dispose();
  return record('linear', b ? [x, weight, b] : [x, weight], out, (g) => {
    const g2 = Tensor.view(g, [rows, outF]);
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      const d2 = mm(g2, weight);
      dx = Tensor.view(d2, x.shape);
      d2.dispose();
    }
    let dw: Tensor | null = null;
    if (weight.requiresGrad) {
      const xv = Tensor.view(x, [rows, inF]);
      dw = mm(g2, xv, true, false);
      xv.dispose();
    }
    const db = b?.requiresGrad ? sum(g2, 0) : null;
    g2.dispose();
    return [dx, dw, db];
  });
}
