/**
 * Loss kernels: binary cross-entropy with logits (per element, optional broadcast weight and
 * posWeight) and cross-entropy over class rows, each with a fused backward that reads the
 * upstream gradient (one value for 'mean'/'sum', one per element or row for 'none').
 * With `split` a kernel runs over one range of a tensor larger than one binding: binary
 * cross-entropy over a range of elements (`u.start` its first index, for the broadcast factors,
 * which stay bound whole), cross-entropy over a range of rows (offsets of the chunk in the bound
 * ranges of the [N, C] tensors, the per-row tensors and the rows' output).
 */
import { buffers, f32, linearMain, stridedOffset } from './common.js';
import { broadcastStrides } from './elementwise.js';
import { splitEntry } from './movement.js';

/** A broadcast operand's value at output index `gi` (bound at `i` when it has the output's shape), as a WGSL `let`. */
function load(name: string, buf: string, shape: number[], outShape: number[]): string {
  const n = shape.reduce((a, b) => a * b, 1);
  const same = shape.length === outShape.length && shape.every((d, k) => d === outShape[k]);
  if (same) return `let ${name} = ${buf}[i];`;
  if (n === 1) return `let ${name} = ${buf}[0];`;
  return `${stridedOffset(`${name}_j`, 'gi', outShape, broadcastStrides(shape, outShape))}\n  let ${name} = ${buf}[${name}_j];`;
}

/** The entry point of a binary cross-entropy kernel: `gi` is the global element index. */
const bceEntry = (split: boolean, binding: number, numel: number, body: string) =>
  splitEntry(split, binding, ['start'], numel, `  let gi = i${split ? ' + u.start' : ''};\n${body}`);

export interface BceShapes {
  shape: number[];
  weight?: number[];
  posWeight?: number[];
}

/** Declarations and loads of x, y, w, pw (w and pw default to 1). */
function bceOperands(s: BceShapes): { decls: [string, 'read'][]; loads: string } {
  const decls: [string, 'read'][] = [['x', 'read'], ['y', 'read']];
  const loads = ['let xv = x[i];', 'let yv = y[i];'];
  if (s.weight) {
    decls.push(['w', 'read']);
    loads.push(load('wv', 'w', s.weight, s.shape));
  } else loads.push('let wv = 1.0;');
  if (s.posWeight) {
    decls.push(['pw', 'read']);
    loads.push(load('pwv', 'pw', s.posWeight, s.shape));
  } else loads.push('let pwv = 1.0;');
  return { decls, loads: loads.join('\n  ') };
}

/** softplus(−x) = log(1 + e^(−x)), written so that it never overflows. */
const SOFTPLUS_NEG = 'let sp = log(1.0 + exp(-abs(xv))) + max(-xv, 0.0);';

/** Per-element loss w·[(1 − y)·x + (1 + (pw − 1)·y)·softplus(−x)]. Bindings: x, y, w?, pw?, out. */
export function bceKernel(s: BceShapes, split = false) {
  const numel = s.shape.reduce((a, b) => a * b, 1);
  const { decls, loads } = bceOperands(s);
  const code = `${buffers([...decls, ['out', 'read_write']])}
${bceEntry(split, decls.length + 1, numel, `  ${loads}
  ${SOFTPLUS_NEG}
  out[i] = wv * ((1.0 - yv) * xv + (1.0 + (pwv - 1.0) * yv) * sp);`)}`;
  return { code, workgroups: Math.ceil(numel / 64) };
}

/**
 * Gradients of the per-element loss times the upstream gradient γ·`scale`:
 * ∂/∂x = w·[(1 + (pw − 1)·y)·σ(x) − pw·y], ∂/∂y = w·[(pw − 1)·softplus(−x) − x].
 * Bindings: g, x, y, w?, pw?, then dx and/or dy.
 */
export function bceBackwardKernel(s: BceShapes, gScalar: boolean, scale: number, wantX: boolean, wantY: boolean, split = false) {
  const numel = s.shape.reduce((a, b) => a * b, 1);
  const { decls, loads } = bceOperands(s);
  const outs: [string, 'read_write'][] = [];
  if (wantX) outs.push(['dx', 'read_write']);
  if (wantY) outs.push(['dy', 'read_write']);
  const code = `${buffers([['g', 'read'], ...decls, ...outs])}
${bceEntry(split, decls.length + outs.length + 1, numel, `  ${loads}
  let gw = g[${gScalar ? '0' : 'i'}] * ${f32(scale)} * wv;
  ${wantX ? `let e = exp(-abs(xv));
  let sig = select(e, 1.0, xv >= 0.0) / (1.0 + e);
  dx[i] = gw * ((1.0 + (pwv - 1.0) * yv) * sig - pwv * yv);` : ''}
  ${wantY ? `${SOFTPLUS_NEG}\n  dy[i] = gw * ((pwv - 1.0) * sp - xv);` : ''}`)}`;
  return { code, workgroups: Math.ceil(numel / 64) };
}

/** The class index of row r's target, or −1 when it is `ignoreIndex`, or −2 when it is not a valid class. */
function targetFn(c: number, ignoreIndex: number): string {
  return `fn classOf(t: f32) -> i32 {
  if (t == ${f32(ignoreIndex)}) { return -1; }
  let k = i32(t);
  if (t < 0.0 || t >= ${f32(c)} || f32(k) != t) { return -2; }
  return k;
}`;
}

/**
 * One thread per row of [N, C] logits: lse = log Σ exp(x), loss = w[t]·(lse − x[t]).
 * 'none' writes the loss per row; otherwise (loss, w[t]) pairs for the weighted mean. Ignored rows
 * give (0, 0); an invalid target gives NaN. Bindings: x, t, w?, lse, out.
 */
export function crossEntropyKernel(n: number, c: number, hasWeight: boolean, ignoreIndex: number, perRow: boolean, split = false) {
  const decls: [string, 'read' | 'read_write'][] = [['x', 'read'], ['t', 'read']];
  if (hasWeight) decls.push(['w', 'read']);
  decls.push(['lse', 'read_write'], ['out', 'read_write']);
  const o = split ? { x: ' + u.xOff', r: ' + u.rOff', out: ' + u.outOff' } : { x: '', r: '', out: '' };
  const write = (loss: string, wt: string) => (perRow ? `out[i${o.out}] = ${loss};` : `out[2u * i${o.out}] = ${loss};\n    out[2u * i + 1u${o.out}] = ${wt};`);
  const body = `  let base = i * ${c}u${o.x};
  var m = x[base];
  for (var k = 1u; k < ${c}u; k++) { m = max(m, x[base + k]); }
  var s = 0.0;
  for (var k = 0u; k < ${c}u; k++) { s += exp(x[base + k] - m); }
  let l = m + log(s);
  lse[i${o.r}] = l;
  let k = classOf(t[i${o.r}]);
  if (k == -1) {
    ${write('0.0', '0.0')}
  } else if (k == -2) {
    var nanBits = 0x7fc00000u;
    let nan = bitcast<f32>(nanBits);
    ${write('nan', 'nan')}
  } else {
    let wt = ${hasWeight ? 'w[k]' : '1.0'};
    ${write('wt * (l - x[base + u32(k)])', 'wt')}
  }`;
  const code = `${buffers(decls)}
${targetFn(c, ignoreIndex)}
${splitEntry(split, decls.length, ['xOff', 'rOff', 'outOff'], n, body)}`;
  return { code, workgroups: Math.ceil(n / 64) };
}

/** The scalar loss from the column sums (Σ loss, Σ w): their ratio for 'mean', Σ loss for 'sum'. Bindings: sums, out. */
export function crossEntropyReduceKernel(mean: boolean) {
  const code = `${buffers([['sums', 'read'], ['out', 'read_write']])}
${linearMain(1, `  out[0] = ${mean ? 'sums[0] / sums[1]' : 'sums[0]'};`)}`;
  return { code, workgroups: 1 };
}

/**
 * dx[r, k] = γ_r · w[t]·(softmax(x)[r, k] − [k = t]) with γ the upstream gradient (divided by Σ w for
 * 'mean'); zero on ignored rows. Bindings: g, x, t, w?, lse, sums? (mean only), dx.
 */
export function crossEntropyBackwardKernel(n: number, c: number, hasWeight: boolean, ignoreIndex: number, reduction: 'mean' | 'sum' | 'none', split = false) {
  const decls: [string, 'read' | 'read_write'][] = [['g', 'read'], ['x', 'read'], ['t', 'read']];
  if (hasWeight) decls.push(['w', 'read']);
  decls.push(['lse', 'read']);
  if (reduction === 'mean') decls.push(['sums', 'read']);
  decls.push(['dx', 'read_write']);
  const numel = n * c;
  const gv = { mean: 'g[0] / sums[1]', sum: 'g[0]', none: 'g[r]' }[reduction];
  // Split: x and dx bound from the chunk's first row (offset u.xOff), t, lse and a per-row g likewise (u.rOff).
  const body = `  let r = i / ${c}u${split ? ' + u.rOff' : ''};
  let xi = i${split ? ' + u.xOff' : ''};
  let k = classOf(t[r]);
  if (k < 0) { dx[xi] = 0.0; return; }
  let p = exp(x[xi] - lse[r]);
  dx[xi] = ${gv} * ${hasWeight ? 'w[k]' : '1.0'} * (p - select(0.0, 1.0, i32(i % ${c}u) == k));`;
  const code = `${buffers(decls)}
${targetFn(c, ignoreIndex)}
${splitEntry(split, decls.length, ['xOff', 'rOff'], numel, body)}`;
  return { code, workgroups: Math.ceil(numel / 64) };
}
