/**
 * Batched matrix multiply C[b] = op(A[b]) · op(B[b]), op = identity or transpose, read straight from
 * the stored layout (no transposed copy). Each thread keeps a 4x4 tile of C in registers; on
 * lavapipe every storage load is a scalar loop over the lanes, so register reuse is what pays,
 * while workgroup shared memory makes it slower. Out-of-range rows/cols are clamped on load and
 * masked on store, keeping the inner loop free of branches.
 */
import { buffers, stridedOffset } from './common.js';

export interface MatmulParams {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Output batch shape, and the matrix-index strides of A and B over it (0 where broadcast). */
  batchShape: number[];
  batchStridesA: number[];
  batchStridesB: number[];
}

const T = 4;
const WG = 8;

export function matmulKernel(p: MatmulParams) {
  const { m, n, k } = p;
  const tilesM = Math.ceil(m / (T * WG));
  const tilesN = Math.ceil(n / (T * WG));
  const batches = p.batchShape.reduce((x, y) => x * y, 1);
  const aIdx = (row: string, kk: string) => (p.transA ? `${kk} * ${m}u + ${row}` : `${row} * ${k}u + ${kk}`);
  const bIdx = (kk: string, col: string) => (p.transB ? `${col} * ${k}u + ${kk}` : `${kk} * ${n}u + ${col}`);
  const rows = [0, 1, 2, 3];
  const code = `${buffers([['A', 'read'], ['B', 'read'], ['C', 'read_write']])}
@compute @workgroup_size(${WG}, ${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= ${batches * tilesM * tilesN}u) { return; }
  let batch = w / ${tilesM * tilesN}u;
  let tile = w % ${tilesM * tilesN}u;
  let row0 = (tile / ${tilesN}u) * ${T * WG}u + lid.y * ${T}u;
  let col0 = (tile % ${tilesN}u) * ${T * WG}u + lid.x * ${T}u;
  ${stridedOffset('ba', 'batch', p.batchShape, p.batchStridesA.map((s) => s * m * k))}
  ${stridedOffset('bb', 'batch', p.batchShape, p.batchStridesB.map((s) => s * k * n))}
  ${rows.map((r) => `let r${r} = min(row0 + ${r}u, ${m - 1}u);`).join('\n  ')}
  ${rows.map((c) => `let c${c} = min(col0 + ${c}u, ${n - 1}u);`).join('\n  ')}
  var acc: array<vec4<f32>, 4>;
  for (var kk = 0u; kk < ${k}u; kk++) {
    let b = vec4<f32>(${rows.map((c) => `B[bb + ${bIdx('kk', `c${c}`)}]`).join(', ')});
    ${rows.map((r) => `acc[${r}] += A[ba + ${aIdx(`r${r}`, 'kk')}] * b;`).join('\n    ')}
  }
  let cb = batch * ${m * n}u;
  for (var r = 0u; r < 4u; r++) {
    let row = row0 + r;
    if (row >= ${m}u) { break; }
    for (var c = 0u; c < 4u; c++) {
      if (col0 + c < ${n}u) { C[cb + row * ${n}u + col0 + c] = acc[r][c]; }
    }
  }
}`;
  return { code, workgroups: batches * tilesM * tilesN };
}
