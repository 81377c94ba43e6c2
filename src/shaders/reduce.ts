/**
 * Reductions (sum, max, min, argmax) over any set of dims. Adjacent dims of the same kind are merged,
 * the reduced dims become nested loops (no index division in the inner loop), and the outermost
 * reduced dim may be split into `parts` partial results so that a few long reductions still
 * occupy every core; a second pass then reduces the partials.
 */
import { FLT_MAX, buffers, f32, linearMain, stridedOffset } from './common.js';

export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

interface Run {
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
  if (isArg && red.length > 1) throw new Error('argmax/argmin reduce a single dim');
  const combine = {
    sum: 'acc += v;',
    max: 'acc = max(acc, v);',
    min: 'acc = min(acc, v);',
    argmax: 'if (v > acc) { acc = v; idx = x0; }',
    argmin: 'if (v < acc) { acc = v; idx = x0; }',
  }[op];
  let loop = `let v = src[${['base', ...red.map((r, k) => `x${k} * ${r.stride}u`)].join(' + ')}];\n    ${combine}`;
  for (let k = red.length - 1; k >= 1; k--) {
    loop = `for (var x${k} = 0u; x${k} < ${red[k].size}u; x${k}++) {\n    ${loop}\n    }`;
  }
  const result = isArg ? 'f32(idx)' : scale === 1 ? 'acc' : `acc * ${f32(scale)}`;
  const body = `  let o = i / ${parts}u;
  let p = i % ${parts}u;
  ${stridedOffset('base', 'o', kept.map((r) => r.size), kept.map((r) => r.stride))}
  var acc = ${INIT[op]};
  var idx = 0u;
  let hi = min((p + 1u) * ${chunk}u, ${outer.size}u);
  for (var x0 = p * ${chunk}u; x0 < hi; x0++) {
    ${red.length ? loop : 'let v = src[base];\n    ' + combine}
  }
  out[i] = ${result};`;
  const code = `${buffers([['src', 'read'], ['out', 'read_write']])}
${linearMain(total, body)}`;
  return { code, workgroups: Math.ceil(total / 64), outputs: total };
}
