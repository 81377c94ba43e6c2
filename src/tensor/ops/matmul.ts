/** Matrix multiplication with PyTorch semantics (1-D operands, batched with broadcast batch dims). */
import { copyBuffer, deviceInfo, dispatch, maxBindingSize, panelsFit, releaseTexels, toPanels, toTexels } from '../device.js';
import { noGrad, record } from '../autograd.js';
import { Tensor, numelOf } from '../tensor.js';
import { balancedChunk, chunkElements, fitsBinding, rangeBinding } from '../split.js';
import { matmulKernel, packsB, panelWidth, type MatmulParams } from '../../shaders/matmul.js';
import { broadcastStrides } from '../../shaders/elementwise.js';
import { broadcastShapes, mapInPlace } from './elementwise.js';
import { zeros } from './creation.js';
import { offsetOf, reshape, stridesOf, transpose } from './shape.js';

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
  if (numelOf(outShape) === 0) return Tensor.empty(outShape, 'matmul');
  const p: MatmulParams = {
    m, n, k, transA, transB, batchShape,
    batchStridesA: broadcastStrides(batchA, batchShape),
    batchStridesB: broadcastStrides(batchB, batchShape),
    subgroups: (opts.subgroups ?? true) && deviceInfo().subgroups,
    cpu: deviceInfo().isCpu,
  };
  const detail = `[${a.shape}]${transA ? 'ᵀ' : ''} x [${b.shape}]${transB ? 'ᵀ' : ''}`;
  if (numelOf(outShape) * 4 > maxBindingSize() || !fitsBinding(a, b)) return mmSplit(a, b, p, outShape, detail, opts);
  const out = Tensor.empty(outShape, 'matmul');
  runMatmul(p, detail, a.buffer, b.buffer, out.buffer);
  return out;
}

/** Whether a matmul reads its `matricesB` B matrices as panels: worth it (`packsB`) and copyable (`panelsFit`). */
export function usesPanels(p: MatmulParams, matricesB: number): boolean {
  return packsB(p) && panelsFit(p.n / 4, p.k, panelWidth(p), matricesB);
}

/**
 * Records one matmul dispatch over bound operands, copying the vec4 ones into texels (a large
 * row-major B into panels, see `packsB`).
 */
function runMatmul(p: MatmulParams, detail: string, a: GPUBuffer | GPUBufferBinding, b: GPUBuffer | GPUBufferBinding, c: GPUBuffer | GPUBufferBinding): void {
  // B matrices in the binding: one past the largest matrix index the batch strides reach.
  const matricesB = 1 + p.batchShape.reduce((sum, size, d) => sum + (size - 1) * p.batchStridesB[d], 0);
  const panelB = usesPanels(p, matricesB);
  const kern = matmulKernel({ ...p, panelB });
  const tb = panelB ? toPanels(b, p.n / 4, p.k, panelWidth(p), matricesB) : kern.texels[1] ? toTexels(b) : null;
  const ta = kern.texels[0] ? toTexels(a) : null;
  dispatch({ name: 'matmul', detail, code: kern.code, workgroups: kern.workgroups, buffers: [ta ?? a, tb ?? b, c], uniforms: kern.uniforms });
  for (const t of [ta, tb]) if (t) releaseTexels(t);
}

// ---------------------------------------------------------------- work larger than one binding

/** Binding offsets are multiples of this many elements (256 bytes, as `rangeBinding` binds them); the matmul kernel takes no offsets. */
const ALIGN = 64;
const gcd = (x: number, y: number): number => (y ? gcd(y, x % y) : x);
/** The least step q such that q·per elements are a whole number of aligned blocks. */
const alignStep = (per: number) => ALIGN / gcd(per, ALIGN);

/**
 * Chunks of at most `most` items that start on aligned offsets for every `per` (elements per item)
 * when the first item does; falls back to unaligned chunks (staged by copies) when aligned ones would not fit.
 */
function alignedChunk(items: number, most: number, per: number[]): number {
  const q = per.reduce((l, x) => { const s = alignStep(x); return (l * s) / gcd(l, s); }, 1);
  return most >= q ? Math.min(items, Math.floor(most / q) * q) : balancedChunk(items, most);
}

/**
 * Binds elements [start, start + count) of `t` for the kernel: the range itself when it starts on an
 * aligned offset, else a copy into a new tensor (kept in `temps` to be freed after the dispatch).
 */
function operand(t: Tensor, start: number, count: number, temps: Tensor[]): GPUBufferBinding {
  if (start % ALIGN === 0) return rangeBinding(t, start, count);
  const copy = Tensor.empty([count], 'matmul staged operand');
  copyBuffer(t.buffer, start * 4, copy.buffer, 0, count * 4);
  temps.push(copy);
  return { buffer: copy.buffer };
}

/** Records one matmul dispatch over bound operands; an unaligned output range goes through a copy. */
function run(p: MatmulParams, detail: string, a: GPUBufferBinding, b: GPUBufferBinding, out: Tensor, start: number, count: number, temps: Tensor[]): void {
  const aligned = start % ALIGN === 0;
  const c = aligned ? operand(out, start, count, temps) : Tensor.empty([count], 'matmul staged output');
  runMatmul(p, detail, a, b, c instanceof Tensor ? c.buffer : c);
  if (c instanceof Tensor) {
    copyBuffer(c.buffer, 0, out.buffer, start * 4, count * 4);
    temps.push(c);
  }
}

/** The last two dims swapped into a new buffer (a transposed operand laid out for a split). */
const swapped = (t: Tensor) => noGrad(() => transpose(t, -1, -2));

/**
 * A matmul with an operand larger than one binding. Whole matrices run in groups of consecutive
 * batches when one matrix of each operand fits; otherwise each matrix runs by rows of the output
 * (A's rows and C's rows in ranges, B whole); when B does not fit but C does, by ranges of k whose
 * partial products are summed (A as [k, m] and B as [k, n], so both ranges are contiguous); when
 * neither but A fits, as Cᵀ = op(B)ᵀ·op(A)ᵀ by rows, transposed back. Operands in another layout
 * than a split needs are first copied transposed. Else it throws, naming the shapes.
 */
function mmSplit(a: Tensor, b: Tensor, p: MatmulParams, outShape: number[], detail: string, opts: { subgroups?: boolean }): Tensor {
  const { m, n, k, batchShape } = p;
  const lim = chunkElements();
  const [mk, kn, mn] = [m * k, k * n, m * n];
  const rowsFit = kn <= lim && Math.max(k, n) <= lim;
  const kFits = mn <= lim && Math.max(m, n) <= lim;
  if (!rowsFit && !kFits && mk <= lim && Math.max(k, m) <= lim) {
    const ct = mm(b, a, !p.transB, !p.transA, opts);
    const c = swapped(ct);
    ct.dispose();
    return c;
  }
  const out = Tensor.empty(outShape, 'matmul');
  const batches = numelOf(batchShape);
  const st = stridesOf(batchShape);
  const contiguous = (s: number[]) => s.every((v, i) => v === st[i]);
  const matrixIndex = (s: number[], bi: number) => offsetOf(bi, batchShape, s);
  const temps: Tensor[] = [];
  if (mk <= lim && kn <= lim && mn <= lim) {
    // Batches in groups: an operand is ranged when its matrices follow the output's, whole when broadcast, else one matrix at a time.
    const modes = [p.batchStridesA, p.batchStridesB].map((s) => (s.every((v) => v === 0) ? 'whole' : contiguous(s) ? 'ranged' : 'single'));
    const per = [modes[0] === 'ranged' ? mk : 0, modes[1] === 'ranged' ? kn : 0, mn];
    const most = modes.includes('single') ? 1 : Math.floor(lim / Math.max(...per));
    const step = alignedChunk(batches, most, per.filter((x) => x > 0));
    for (let b0 = 0; b0 < batches; b0 += step) {
      const cnt = Math.min(step, batches - b0);
      const bind = (t: Tensor, mode: string, s: number[], size: number) =>
        operand(t, mode === 'ranged' ? b0 * size : mode === 'whole' ? 0 : matrixIndex(s, b0) * size, mode === 'ranged' ? cnt * size : size, temps);
      const q = { ...p, batchShape: [cnt], batchStridesA: [modes[0] === 'ranged' ? 1 : 0], batchStridesB: [modes[1] === 'ranged' ? 1 : 0] };
      run(q, detail, bind(a, modes[0], p.batchStridesA, mk), bind(b, modes[1], p.batchStridesB, kn), out, b0 * mn, cnt * mn, temps);
    }
  } else if (rowsFit) {
    // By rows of the output: A untransposed, so its rows are contiguous.
    const aa = p.transA ? swapped(a) : a;
    const rows = alignedChunk(m, Math.floor(lim / Math.max(k, n)), [k, n]);
    for (let bi = 0; bi < batches; bi++) {
      const [ai, bj] = [matrixIndex(p.batchStridesA, bi), matrixIndex(p.batchStridesB, bi)];
      const bBind = operand(b, bj * kn, kn, temps);
      for (let r0 = 0; r0 < m; r0 += rows) {
        const mr = Math.min(rows, m - r0);
        const q = { ...p, m: mr, transA: false, batchShape: [], batchStridesA: [], batchStridesB: [] };
        run(q, detail, operand(aa, ai * mk + r0 * k, mr * k, temps), bBind, out, bi * mn + r0 * n, mr * n, temps);
      }
    }
    if (aa !== a) temps.push(aa);
  } else if (kFits) {
    // By ranges of k: A stored as [k, m], B as [k, n]; partial products summed in a [m, n] tensor.
    const aa = p.transA ? a : swapped(a);
    const bb = p.transB ? swapped(b) : b;
    const ks = alignedChunk(k, Math.floor(lim / Math.max(m, n)), [m, n]);
    for (let bi = 0; bi < batches; bi++) {
      const [ai, bj] = [matrixIndex(p.batchStridesA, bi), matrixIndex(p.batchStridesB, bi)];
      const acc = Tensor.empty([m, n], 'matmul partial sum');
      for (let k0 = 0; k0 < k; k0 += ks) {
        const kc = Math.min(ks, k - k0);
        const q = { ...p, k: kc, transA: true, transB: false, batchShape: [], batchStridesA: [], batchStridesB: [] };
        const part = k0 === 0 ? acc : Tensor.empty([m, n], 'matmul partial product');
        run(q, detail, operand(aa, ai * mk + k0 * m, kc * m, temps), operand(bb, bj * kn + k0 * n, kc * n, temps), part, 0, mn, temps);
        if (part !== acc) {
          mapInPlace('matmul_accumulate', acc, (t, x) => `${t} + ${x}`, [part]);
          temps.push(part);
        }
      }
      copyBuffer(acc.buffer, 0, out.buffer, bi * mn * 4, mn * 4);
      temps.push(acc);
    }
    for (const t of [aa, bb]) if (t !== a && t !== b) temps.push(t);
  } else {
    out.dispose();
    throw new Error(`matmul ${detail}: no split of this product fits the ${lim * 4}-byte storage binding limit (one matrix of A, B or C, of ${mk}, ${kn} and ${mn} elements, must fit)`);
  }
  for (const t of temps) t.dispose();
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
  return record('matmul', [a, b], out, (g) => [a.requiresGrad ? mm(g, b, false, true) : null, b.requiresGrad ? mm(a, g, true, false) : null]);
}
