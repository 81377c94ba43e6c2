/**
 * Batched matrix multiply C[b] = op(A[b]) · op(B[b]), op = identity or transpose, read straight from
 * the stored layout (no transposed copy).
 *
 * Written for lavapipe (Mesa 25.0), where every storage load becomes a bounds-checked branchy
 * sequence per lane and component (about 9 instructions per value), while arithmetic and subgroup
 * broadcasts are single SIMD instructions. So the kernel minimises loads per FMA:
 * - a workgroup is one subgroup of 8 lanes sharing the same `TM` rows, each lane owning `TN`
 *   columns; every lane loads a different piece of A and `subgroupBroadcast` hands each value to
 *   all lanes (A is loaded once, not 8 times), while each lane loads its own B;
 * - loads are vec4 along whichever axis is contiguous and divisible by 4, and such operands are read
 *   as texels (on lavapipe a texel fetch costs about 1.8 instructions per value from a storage
 *   texture, 2.7 from a sampled one, a storage-buffer load about 9; see `setStorageTexels`);
 * - the k loop works in chunks of 8 or 16 steps summed in SSA values before touching the
 *   accumulators, because lavapipe blends every loop-carried variable with the execution mask on
 *   each update, two rows at a time (`ROW_BLOCK`); steps past k read zeros, so there is no
 *   separate tail code;
 * - results are stored from a loop, since every unrolled store is a per-lane scatter of its own;
 * - a large row-major B is first copied into panels (`packsB`, `toPanels` in tensor/device.ts), so
 *   that the B a workgroup reads per k chunk is contiguous instead of 16 rows a whole matrix row apart.
 * Larger tiles (64x8, 32x16) measured no faster and take 4-7 s to compile (32x8 about 1 s).
 * Without subgroups every lane loads the A values itself (the same addresses), slower but correct.
 * On a GPU the same kernel runs with small tiles, many to a workgroup (`pickTile`,
 * `tilesPerWorkgroup`), and B in its stored layout.
 * m, n, k are uniforms, so shapes share a pipeline per tile and layout.
 */
import { buffers, memoize, panelTexel, stridedOffset, texel } from './common.js';

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
  /** Share A through `subgroupBroadcast` (needs the `subgroups` feature and subgroups of at least 8 lanes). */
  subgroups: boolean;
  /** B is bound as panels (`toPanels`, see `packsB`) rather than in its stored layout. */
  panelB?: boolean;
  /** The adapter is a CPU (lavapipe): tiles and workgroups sized for it (`pickTile`, `tilesPerWorkgroup`). */
  cpu: boolean;
}

/** Lanes per tile (a workgroup holds `tilesPerWorkgroup` tiles); with subgroups, the lanes that share A values. */
const LANES = 8;

/**
 * Rows per tile and columns per lane. On a CPU 32x8 measured best among tiles that compile in a few
 * seconds; small shapes get smaller tiles to limit wasted work and keep every thread busy. A GPU
 * thread holds its accumulators in registers, which large tiles spill, and a GPU wants thousands of
 * tiles in flight. On an H200 (16 tiles per workgroup) the 1024 matmul and the 3x3 convolution ran
 * at 3.8-6.9 and 3.8-4.5 TFLOP/s with 8x4, 5.9-6.1 and 3.2-3.8 with 16x4, 2.7 and 3.2 with 16x8,
 * 3.3 and 3.3 with 32x4.
 */
export function pickTile(m: number, n: number, batches: number, subgroups: boolean, cpu: boolean): [tm: number, tn: number] {
  if (!subgroups) return [8, n <= 4 * LANES ? 4 : 8];
  if (!cpu) return [8, 4];
  let tm = 32;
  let tn = 8;
  const workgroups = () => batches * Math.ceil(m / tm) * Math.ceil(n / (tn * LANES));
  if (n <= 4 * LANES || workgroups() < 16) tn = 4;
  while (tm > 8 && (m <= tm / 2 || workgroups() < 16)) tm /= 2;
  return [tm, tn];
}

/**
 * Tiles (8-lane groups) per workgroup. Lavapipe runs a workgroup of 8 as one 8-wide SIMD batch,
 * one tile each. A GPU's subgroups are 32 or 64 lanes wide, and workgroups of 8 would leave most of
 * every one idle, so there a workgroup holds several tiles, each group of 8 lanes sharing its A
 * values by `subgroupShuffle` among themselves. On an H200 the 1024 matmul and the 3x3
 * convolution ran at 2.1 and 1.7 TFLOP/s with one 32x8 tile per workgroup (the CPU setting), 6.1
 * and 3.2 with 16 tiles of 16x4, 5.8 and 2.0 with 32 of them.
 */
export const tilesPerWorkgroup = (cpu: boolean): number => (cpu ? 1 : 16);

/**
 * WGSL naming, from the builtins `wid`, `nwg` and `lid` (and `sg`, the subgroup invocation id, when
 * `lanes`), the tile `w`, the lane `li` (0..7) within it and, when `lanes`, `lane`, its subgroup
 * lane among the 8, and for several tiles per workgroup `gbase`, the subgroup lane of the tile's
 * lane 0 (subgroups run over consecutive invocations). One tile per workgroup: li = lid.
 */
export function tileInvocation(perWorkgroup: number, lanes: boolean): string {
  const lines = perWorkgroup > 1
    ? [`let li = lid % ${LANES}u; let w = (wid.x + wid.y * nwg.x) * ${perWorkgroup}u + lid / ${LANES}u;`, lanes ? 'let lane = li; let gbase = sg - li;' : '']
    : ['let li = lid; let w = wid.x + wid.y * nwg.x;', lanes ? `let lane = sg % ${LANES}u;` : ''];
  return lines.join('\n  ');
}

const range = (n: number) => [...Array(n).keys()];

/**
 * `aAt(r, s)` for A values spread over the lanes: `src(r, s)` names the register, lane and component
 * (-1 for a scalar) holding A[row0 + r, k0 + s]; each register and lane is broadcast once, the
 * `let` appended to `loadA` on first use. With several tiles per workgroup (`shared`), the 8 lanes
 * of a tile are subgroup lanes `gbase` .. `gbase` + 7, read by shuffle.
 */
function broadcastA(loadA: string[], src: (r: number, s: number) => [reg: string, lane: number, comp: number], shared = false) {
  const seen = new Set<string>();
  return (r: number, s: number) => {
    const [reg, lane, comp] = src(r, s);
    const v = `${reg}_${lane}`;
    if (!seen.has(v)) {
      seen.add(v);
      loadA.push(`let ${v} = ${shared ? `subgroupShuffle(${reg}, gbase + ${lane}u)` : `subgroupBroadcast(${reg}, ${lane}u)`};`);
    }
    return comp < 0 ? v : `${v}[${comp}]`;
  };
}

/**
 * Rows whose chunk sums are interleaved step by step. The chunk's B values do not fit in x86's 16
 * vector registers, so every use reloads one; interleaving two rows makes each reload feed two
 * multiplies, and a 2-row x 4-column block (8 sums, 4 B values, 2 A values) still fits the
 * registers. Measured 12 % faster on the 1024 matmul (llvm-mca: 13 % fewer cycles per chunk);
 * 4 rows spill the sums and are slower.
 */
const ROW_BLOCK = 2;

/**
 * The statements of one k chunk of `ch` steps: `loadA` (A registers), B as `nq` vec4s per step
 * (`bRow(s, q)`), then the chunk's partial sums in SSA (`x{r}_{q}_{s}`, `ROW_BLOCK` rows at a
 * time) and one update of each accumulator `acc{r}_{q}` (vec4 over this lane's columns 4q .. 4q+3).
 */
function chunkBody(tm: number, nq: number, ch: number, loadA: string[], aAt: (r: number, s: number) => string, bRow: (s: number, q: number) => string, loadB: string[] = []): string {
  range(ch).forEach((s) => range(nq).forEach((q) => loadB.push(`let b${s}_${q} = ${bRow(s, q)};`)));
  const sums = range(Math.ceil(tm / ROW_BLOCK)).flatMap((g) => {
    const rows = range(tm).slice(g * ROW_BLOCK, (g + 1) * ROW_BLOCK);
    return range(nq).flatMap((q) => [
      ...range(ch).flatMap((s) => rows.map((r) => `let x${r}_${q}_${s} = ${s ? `x${r}_${q}_${s - 1} + ` : ''}${aAt(r, s)} * b${s}_${q};`)),
      ...rows.map((r) => `acc${r}_${q} += x${r}_${q}_${ch - 1};`),
    ]);
  });
  return [...loadA, ...loadB, ...sums].join('\n    ');
}

/**
 * One k chunk of `8·halves` steps of the subgroup GEMM (8 lanes, `tm` rows shared, `4·nq` columns
 * per lane) for an A whose rows are contiguous along k: `aPart(i, h)` is the vec4 this lane loads for
 * row group i in half h, row 4i + lane/2 at steps 8h + 4·(lane % 2) .. +3; `bRow(s, q)` the vec4 of B
 * at step s over quad q.
 */
export function subgroupChunk(
  tm: number, nq: number, aPart: (i: number, h: number) => string, bRow: (s: number, q: number) => string, loadB: string[] = [], halves = 1, shared = false,
): string {
  const loadA = range(tm / 4).flatMap((i) => range(halves).map((h) => `let a${i}_${h} = ${aPart(i, h)};`));
  const aAt = broadcastA(loadA, (r, s) => [`a${r >> 2}_${s >> 3}`, 2 * (r & 3) + ((s & 7) >> 2), s & 3], shared);
  return chunkBody(tm, nq, LANES * halves, loadA, aAt, bRow, loadB);
}

/** Declarations of the zeroed accumulators `acc{r}_{q}` and, after the k loop, of `res`: them as an array (for a store loop). */
export function accumulators(tm: number, nq: number): [decl: string, res: string] {
  const names = range(tm).flatMap((r) => range(nq).map((q) => `acc${r}_${q}`));
  return [names.map((a) => `var ${a} = vec4<f32>();`).join(' '), `var res = array<vec4<f32>, ${tm * nq}>(${names.join(', ')});`];
}

/**
 * Whether B is worth copying into panels: row-major with vec4 rows, read by the subgroup kernel,
 * with rows of at least 4 KB (so that the 16 rows of a k chunk lie on as many pages), enough rows of
 * A to reuse each panel and enough k for the pages to matter. Paired in-process runs: 1024 square
 * 5-11 % faster with a repacking kernel included, 7-8 % more since the panels are copies (one
 * `copyBufferToTexture` per panel instead of that kernel and two copies); 512 square 19 % slower
 * with the kernel; the 1x1 convolutions' GEMMs (k = 64 or 256, 3136 columns per image) 2-6 %
 * slower even with the copies. Pages are a CPU's concern: a GPU reads B in its stored layout.
 */
export function packsB(p: MatmulParams): boolean {
  return p.cpu && p.subgroups && !p.transB && p.n % 4 === 0 && p.n >= 1024 && p.m >= 256 && p.k >= 256;
}

/**
 * The tile grid of one matmul: rows per workgroup (TM), columns per lane (TN), the tiles along m and
 * n, and `width`, the vec4 columns of one column tile (one B panel).
 */
function tileGrid(p: MatmulParams) {
  const batches = p.batchShape.reduce((x, y) => x * y, 1);
  const [TM, TN] = pickTile(p.m, p.n, batches, p.subgroups, p.cpu);
  return { batches, TM, TN, tilesM: Math.ceil(p.m / TM), tilesN: Math.ceil(p.n / (TN * LANES)), width: (TN * LANES) / 4 };
}

/** The vec4 columns of one B panel: those of one column tile. */
export const panelWidth = (p: MatmulParams): number => tileGrid(p).width;

/**
 * The WGSL of one matmul dispatch, its workgroup count, its uniforms (m, n, k and the tile grid) and
 * which of A and B it reads as texels (those with a vec4 layout; see `toTexels`; a B in panels is
 * bound through `toPanels`).
 */
export function matmulKernel(p: MatmulParams): { code: string; workgroups: number; uniforms: Uint32Array; texels: [a: boolean, b: boolean] } {
  const { batches, tilesM, tilesN } = tileGrid(p);
  const tiles = tilesM * tilesN;
  const { a4, b4 } = vec4Layouts(p);
  const workgroups = Math.ceil((batches * tiles) / tilesPerWorkgroup(p.cpu));
  return { code: matmulCode(p), workgroups, uniforms: new Uint32Array([p.m, p.n, p.k, tilesM, tilesN, tiles, batches * tiles]), texels: [a4, b4] };
}

/** vec4 layouts: A along k (row-major) or m (transposed); B along n (row-major) or k (transposed); C along n. */
function vec4Layouts({ m, n, k, transA, transB }: MatmulParams) {
  return { a4: transA ? m % 4 === 0 : k % 4 === 0, b4: transB ? k % 4 === 0 : n % 4 === 0, c4: n % 4 === 0 };
}

const matmulCode = memoize((p: MatmulParams): string => {
  const { k, transA, transB, subgroups } = p;
  const { TM, TN } = tileGrid(p);
  const T = tilesPerWorkgroup(p.cpu);
  const shared = subgroups && T > 1;
  const { a4, b4, c4 } = vec4Layouts(p);
  // k steps per unrolled chunk: with subgroups one A value per lane and row (two for vec4 A: fewer
  // accumulator updates, each of which lavapipe blends with its execution mask and spills; measured
  // 3-12 % faster); without, a shorter chunk halves the code of the slower fallback.
  const CH = subgroups ? (a4 ? 2 * LANES : LANES) : 4;
  const NQ = TN / 4;
  const rows = range(TM);
  const quads = range(NQ);
  const cols = range(TN);
  // Steps past k read zeros, unless k is a whole number of chunks (most shapes), where none are past.
  const kWhole = k % CH === 0;
  const zeroPast = (kk: string, e: string, v = true) => (kWhole ? e : `select(${v ? 'vec4<f32>()' : '0.0'}, ${e}, ${kk} < k)`);
  // Offsets of A[row, kk] and B[kk, col] (logical indices) in the stored layouts.
  const aOff = (row: string, kk: string) => (transA ? `ba + (${kk}) * m + ${row}` : `ba + ${row} * k + ${kk}`);
  const bOff = (kk: string, col: string) => (transB ? `bb + ${col} * k + ${kk}` : `bb + (${kk}) * n + ${col}`);

  // B for one k step as NQ vec4s over this lane's columns; `loadB` holds chunk-wide loads.
  const loadB: string[] = [];
  let bAt: (s: number, q: number) => string;
  if (p.panelB) {
    // This lane's NQ vec4s in row kk of its column tile's panel.
    bAt = (s, q) => panelTexel('B', `bx + ${q}u`, `k0 + ${s}u`, 'layer');
  } else if (b4 && !transB) {
    bAt = (s, q) => texel('B', `(bb + (k0 + ${s}u) * n) / 4u + bq${q}`);
  } else if (b4) {
    cols.forEach((c) => range(CH / 4).forEach((h) => loadB.push(`let bt${c}_${h} = ${texel('B', `(bb + bc${c} * k + k0) / 4u + ${h}u`)};`)));
    bAt = (s, q) => `vec4<f32>(${range(4).map((j) => `bt${4 * q + j}_${s >> 2}[${s & 3}]`).join(', ')})`;
  } else {
    bAt = (s, q) => `vec4<f32>(${range(4).map((j) => `B[${bOff(`k0 + ${s}u`, `bc${4 * q + j}`)}]`).join(', ')})`;
  }
  const bRow = (s: number, q: number) => zeroPast(`k0 + ${s}u`, bAt(s, q));

  // The chunk: A loaded into registers, `aAt(r, s)` the f32 expression for A[row0 + r, k0 + s].
  let body: string;
  if (subgroups && a4 && !transA) {
    // Lane l holds, for row group i and half h, row 4i + l/2 at k0 + 8h + 4(l%2) .. +3.
    const aPart = (i: number, h: number) =>
      zeroPast(`k0 + ${8 * h}u + lane % 2u * 4u`, texel('A', `(ba + min(row0 + ${4 * i}u + lane / 2u, m - 1u) * k + k0) / 4u + ${2 * h}u + lane % 2u`));
    body = subgroupChunk(TM, NQ, aPart, bRow, loadB, 2, shared);
  } else {
    const loadA: string[] = [];
    let aAt: (r: number, s: number) => string;
    if (subgroups && a4) {
      // Lane l holds rows 4i .. 4i+3 at k0 + 8h + l for each half h of the chunk.
      range(TM / 4).forEach((i) => range(2).forEach((h) => {
        const kk = `k0 + ${8 * h}u + lane`;
        loadA.push(`let a${i}_${h} = ${zeroPast(kk, texel('A', `(ba + (${kk}) * m) / 4u + min(row0 / 4u + ${i}u, m / 4u - 1u)`))};`);
      }));
      aAt = broadcastA(loadA, (r, s) => [`a${r >> 2}_${s >> 3}`, s & 7, r & 3], shared);
    } else if (subgroups) {
      rows.forEach((r) => loadA.push(`let a${r} = ${zeroPast('k0 + lane', `A[${aOff(`ar${r}`, 'k0 + lane')}]`, false)};`));
      aAt = broadcastA(loadA, (r, s) => [`a${r}`, s, -1], shared);
    } else if (a4 && !transA) {
      rows.forEach((r) => range(CH / 4).forEach((h) => loadA.push(`let a${r}_${h} = ${zeroPast(`k0 + ${4 * h}u`, texel('A', `(ba + ar${r} * k + k0) / 4u + ${h}u`))};`)));
      aAt = (r, s) => `a${r}_${s >> 2}[${s & 3}]`;
    } else if (a4) {
      range(TM / 4).forEach((i) => range(CH).forEach((s) => loadA.push(`let a${i}_${s} = ${zeroPast(`k0 + ${s}u`, texel('A', `(ba + (k0 + ${s}u) * m) / 4u + min(row0 / 4u + ${i}u, m / 4u - 1u)`))};`)));
      aAt = (r, s) => `a${r >> 2}_${s}[${r & 3}]`;
    } else {
      rows.forEach((r) => range(CH).forEach((s) => loadA.push(`let a${r}_${s} = ${zeroPast(`k0 + ${s}u`, `A[${aOff(`ar${r}`, `k0 + ${s}u`)}]`, false)};`)));
      aAt = (r, s) => `a${r}_${s}`;
    }
    body = chunkBody(TM, NQ, CH, loadA, aAt, bRow, loadB);
  }
  const [accDecl, res] = accumulators(TM, NQ);

  const store = c4
    ? `if (row < m && col < n) { C[(cb + row * n + col) / 4u] = res[i]; }`
    : range(4).map((j) => `if (row < m && col + ${j}u < n) { C[cb + row * n + col + ${j}u] = res[i][${j}]; }`).join('\n    ');
  return `${subgroups ? 'enable subgroups;\n' : ''}${shared ? 'diagnostic(off, subgroup_uniformity);\n' : ''}struct U { m: u32, n: u32, k: u32, tilesM: u32, tilesN: u32, tiles: u32, total: u32 }
${buffers([['A', a4 ? 'texels' : 'read'], ['B', p.panelB ? 'panels' : b4 ? 'texels' : 'read'], ['C', 'read_write', c4 ? 'vec4<f32>' : 'f32']])}
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${LANES * T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32${subgroups ? ', @builtin(subgroup_invocation_id) sg: u32' : ''}) {
  ${tileInvocation(T, subgroups)}
  if (w >= u.total) { return; }
  let m = u.m; let n = u.n; let k = u.k;
  let batch = w / u.tiles;
  let tile = w % u.tiles;
  // Lavapipe gives each thread a contiguous range of workgroups, so this order decides what stays in
  // its cache. B in its stored layout: consecutive workgroups take the row tiles of one column tile,
  // reusing that slab of B (rows a matrix row apart) while A streams; 7-18 % faster at 1024 than
  // the reverse. B in panels, which stream contiguously: the column tiles of one row tile instead,
  // keeping A's rows; 4-11 % faster at 1024 than row tiles inner.
  ${p.panelB
    ? 'let rowTile = tile / u.tilesN; let colTile = tile % u.tilesN;'
    : 'let rowTile = tile % u.tilesM; let colTile = tile / u.tilesM;'}
  let row0 = rowTile * ${TM}u;
  let col0 = colTile * ${TN * LANES}u + li * ${TN}u;
  ${stridedOffset('bai', 'batch', p.batchShape, p.batchStridesA)}
  ${stridedOffset('bbi', 'batch', p.batchShape, p.batchStridesB)}
  let ba = bai * m * k;
  let bb = bbi * k * n;
  let cb = batch * m * n;
  ${rows.map((r) => `let ar${r} = min(row0 + ${r}u, m - 1u);`).join(' ')}
  ${cols.map((c) => `let bc${c} = min(col0 + ${c}u, n - 1u);`).join(' ')}
  ${p.panelB ? `let layer = bbi * u.tilesN + colTile; let bx = li * ${NQ}u;` : ''}
  ${b4 && !transB && !p.panelB ? quads.map((q) => `let bq${q} = min(col0 / 4u + ${q}u, n / 4u - 1u);`).join(' ') : ''}
  ${accDecl}
  for (var k0 = 0u; k0 < k; k0 += ${CH}u) {
    ${body}
  }
  ${res}
  for (var i = 0u; i < ${TM * NQ}u; i++) {
    let row = row0 + i / ${NQ}u;
    let col = col0 + i % ${NQ}u * 4u;
    ${store}
  }
}`;
});
