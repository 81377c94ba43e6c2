/**
 * Reductions (sum, max, min, argmax) over any set of dims. Adjacent dims of the same kind are merged,
 * the reduced dims become nested loops (no index division in the inner loop), and the outermost
 * reduced dim may be split into `parts` partial results so that a few long reductions still
 * occupy every core; a second pass then reduces the partials.
 */
import { FLT_MAX, buffers, f32, linearMain, stridedOffset } from './common.js';
import { chunkMain } from './movement.js';

export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

export interface Run {
  size: number;
  stride: number;
  reduced: boolean;
}

/** Merges adjacent dims that are both kept or both reduced (valid for contiguous tensors). */
export function mergeDims(shape: number[], reduced: boolean[]): Run[] {
  const runs: Run[] = [];
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] === 1) continue;
    const last = runs[runs.length - 1];
    if (last && last.reduced === reduced[d]) last.size *= shape[d];
    else runs.push({ size: shape[d], stride, reduced: reduced[d] });
    stride *= shape[d];
  }
  return runs.reverse();
}

const INIT: Record<ReduceOp, string> = { sum: '0.0', max: `-${FLT_MAX}`, min: FLT_MAX, argmax: `-${FLT_MAX}`, argmin: FLT_MAX };

/**
 * The body of the loop over the outermost reduced index `x0`: nested loops over the other reduced
 * runs (bounded by `bound`, else their size), each value read at `base` and folded into `acc` (and,
 * for argmax/argmin, its index `idx`, counted as `argIndex`).
 */
function reduceLoop(red: (Run & { bound?: string })[], op: ReduceOp, argIndex: string): string {
  if ((op === 'argmax' || op === 'argmin') && red.length > 1) throw new Error('argmax/argmin reduce a single dim');
  const combine = {
    sum: 'acc += v;',
    max: 'acc = max(acc, v);',
    min: 'acc = min(acc, v);',
    argmax: `if (v > acc) { acc = v; idx = ${argIndex}; }`,
    argmin: `if (v < acc) { acc = v; idx = ${argIndex}; }`,
  }[op];
  if (!red.length) return `let v = src[base];\n    ${combine}`;
  let loop = `let v = src[${['base', ...red.map((r, k) => `x${k} * ${r.stride}u`)].join(' + ')}];\n    ${combine}`;
  for (let k = red.length - 1; k >= 1; k--) {
    loop = `for (var x${k} = 0u; x${k} < ${red[k].bound ?? `${red[k].size}u`}; x${k}++) {\n    ${loop}\n    }`;
  }
  return loop;
}

/**
 * `runs` describe the input; the output has one element per kept coordinate (times `parts`).
 * `scale` multiplies the result (1/n for a mean).
 */
export function reduceKernel(runs: Run[], op: ReduceOp, parts: number, scale = 1) {
  const kept = runs.filter((r) => !r.reduced);
  const red = runs.filter((r) => r.reduced);
  const m = kept.reduce((a, r) => a * r.size, 1);
  const total = m * parts;
  const outer = red[0] ?? { size: 1, stride: 0 };
  const chunk = Math.ceil(outer.size / parts);
  const isArg = op === 'argmax' || op === 'argmin';
  const loop = reduceLoop(red, op, 'x0');
  const result = isArg ? 'f32(idx)' : scale === 1 ? 'acc' : `acc * ${f32(scale)}`;
  const body = `  let o = i / ${parts}u;
  let p = i % ${parts}u;
  ${stridedOffset('base', 'o', kept.map((r) => r.size), kept.map((r) => r.stride))}
  var acc = ${INIT[op]};
  var idx = 0u;
  let hi = min((p + 1u) * ${chunk}u, ${outer.size}u);
  for (var x0 = p * ${chunk}u; x0 < hi; x0++) {
    ${loop}
  }
  out[i] = ${result};`;
  const code = `${buffers([['src', 'read'], ['out', 'read_write']])}
${linearMain(total, body)}`;
  return { code, workgroups: Math.ceil(total / 64), outputs: total };
}

/** Uniform words of `reduceChunkKernel`, in order. */
export const REDUCE_CHUNK_U = ['xOff', 'outOff', 'total', 'cnt', 'parts', 'pStride', 'acc', 'idxOff'] as const;

/**
 * One box of a reduction split under the binding limit. `runs` describe the box (contiguous from
 * `u.xOff` in `src`); the size of `runs[0]` is the runtime `u.cnt`, so boxes of any length share the
 * pipeline. Thread i reduces part `i % u.parts` of output `o = i / u.parts` into
 * `out[u.outOff + p·u.pStride + o]`; with `u.acc` set it first reads back what earlier boxes left
 * there (for argmax/argmin the value lives in `best`, the index in `out`). Reduced indices of
 * argmax/argmin count from `u.idxOff`.
 */
export function reduceChunkKernel(runs: Run[], op: ReduceOp, scale = 1) {
  const isArg = op === 'argmax' || op === 'argmin';
  const sized = runs.map((r, k) => ({ ...r, bound: k === 0 ? 'u.cnt' : `${r.size}u` }));
  const kept = sized.filter((r) => !r.reduced);
  const red = sized.filter((r) => r.reduced);
  const loop = reduceLoop(red, op, 'u.idxOff + x0');
  const outer = red[0]?.bound ?? '1u';
  const body = `  let o = i / u.parts;
  let p = i % u.parts;
  ${stridedOffset('base', 'o', kept.map((r) => r.size), kept.map((r) => r.stride), 'u.xOff')}
  let j = u.outOff + p * u.pStride + o;
  var acc = ${INIT[op]};
  var idx = 0u;
  if (u.acc != 0u) {
    ${isArg ? 'acc = best[j];\n    idx = u32(out[j]);' : 'acc = out[j];'}
  }
  let chunk = (${outer} + u.parts - 1u) / u.parts;
  let hi = min((p + 1u) * chunk, ${outer});
  for (var x0 = p * chunk; x0 < hi; x0++) {
    ${loop}
  }
  out[j] = ${isArg ? 'f32(idx)' : scale === 1 ? 'acc' : `acc * ${f32(scale)}`};${isArg ? '\n  best[j] = acc;' : ''}`;
  return `${buffers([['src', 'read'], ['out', 'read_write'], ...(isArg ? [['best', 'read_write'] as ['best', 'read_write']] : [])])}
struct U { ${REDUCE_CHUNK_U.map((n) => `${n}: u32`).join(', ')} }
@group(0) @binding(${isArg ? 3 : 2}) var<uniform> u: U;
${chunkMain(body)}`;
}
