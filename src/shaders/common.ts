/** WGSL fragments shared by every kernel family. */

/**
 * `build` with its results kept per argument list (compared as JSON). The unrolled GEMM and stencil
 * sources take 0.3-2 ms each to generate, which every dispatch would otherwise pay on the thread
 * that records the work (on a GPU, more than the kernel itself). Entries are kept for the process,
 * one per distinct argument list (the matmul's include its sizes), like the pipelines compiled from them.
 */
export function memoize<A extends unknown[]>(build: (...args: A) => string): (...args: A) => string {
  const cache = new Map<string, string>();
  return (...args) => {
    const key = `${storageTexels} ${JSON.stringify(args)}`; // texel declarations depend on the flag
    let code = cache.get(key);
    if (code === undefined) {
      code = build(...args);
      cache.set(key, code);
    }
    return code;
  };
}

/** Threads per workgroup for the simple one-thread-per-element kernels. */
export const WG = 64;

/**
 * The entry point of a one-dimensional kernel. `i` is the linear thread index, valid below `total`;
 * the grid may be folded into two dimensions (see `foldWorkgroups`), so `i` is rebuilt from both.
 */
export function linearMain(total: number, body: string, wg = WG): string {
  return `
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${wg}u;
  if (i >= ${total}u) { return; }
${body}
}`;
}

/**
 * Whether texel operands are declared as read-only storage textures rather than sampled textures.
 * Lavapipe fetches a storage texel through a shorter function (about 57 instructions for 8 lanes'
 * vec4s, results in registers) than a sampled one (about 87, with a per-lane mip level, results
 * through memory): matmul and the conv GEMMs ran 10-20 % faster. `init()` turns it on where WGSL
 * offers read-only storage textures.
 */
let storageTexels = false;

export function setStorageTexels(on: boolean): void {
  storageTexels = on;
}

/**
 * Declares the bindings in order: storage buffers ('read' or 'read_write' arrays of `type`, f32 by
 * default), 'texels', a vec4<f32> array read through a texture (`toTexels` in tensor/device.ts)
 * with `texel()`, or 'panels', a matrix cut into panels (`toPanels`) read with `panelTexel()`.
 */
export function buffers(decls: [name: string, access: 'read' | 'read_write' | 'texels' | 'panels', type?: string][]): string {
  const texture = (array: string) => (storageTexels ? `texture_storage_2d${array}<rgba32float, read>` : `texture_2d${array}<f32>`);
  return decls
    .map(([name, access, type], i) => {
      const binding = `@group(0) @binding(${i})`;
      if (access === 'texels') return `${binding} var ${name}: ${texture('')};`;
      if (access === 'panels') return `${binding} var ${name}: ${texture('_array')};`;
      return `${binding} var<storage, ${access}> ${name}: array<${type ?? 'f32'}>;`;
    })
    .join('\n');
}

/** Texels per row of a texel texture (a power of two): vec4 i sits at (i % TEXEL_ROW, i / TEXEL_ROW). */
export const TEXEL_ROW = 1024;

/** WGSL reading vec4 `index` of the texels bound as `name`. */
export function texel(name: string, index: string): string {
  return `textureLoad(${name}, vec2<u32>((${index}) & ${TEXEL_ROW - 1}u, (${index}) >> ${Math.log2(TEXEL_ROW)}u)${storageTexels ? '' : ', 0'})`;
}

/** WGSL reading vec4 `x` of row `y` of panel `layer` of the panels bound as `name` (see `toPanels`). */
export function panelTexel(name: string, x: string, y: string, layer: string): string {
  return `textureLoad(${name}, vec2<u32>(${x}, ${y}), ${layer}${storageTexels ? '' : ', 0'})`;
}

/** Largest finite f32: WGSL constant expressions may not produce infinities, so reductions start from ±FLT_MAX. */
export const FLT_MAX = '3.4028234e+38f';

/** Formats a finite number as a WGSL f32 literal. */
export function f32(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`cannot bake ${x} into WGSL; pass it as a uniform`);
  const s = String(x);
  return /[.e]/.test(s) ? `${s}f` : `${s}.0f`;
}

/**
 * WGSL that decomposes the linear index `idx` over a row-major `shape` and returns the offset
 * `base + sum(coord[d] * strides[d])` as an expression stored in `let <name>` (`base` a number or a WGSL expression).
 * Shapes are baked into the code, so division is by constants.
 */
export function stridedOffset(name: string, idx: string, shape: number[], strides: number[], base: number | string = 0): string {
  const b = typeof base === 'number' ? `${base}u` : base;
  if (shape.length === 0) return `let ${name} = ${b};`;
  const lines = [`var ${name}_r = ${idx};`, `var ${name} = ${b};`];
  for (let d = shape.length - 1; d >= 0; d--) {
    const size = shape[d];
    if (d === 0) {
      if (strides[d] !== 0) lines.push(`${name} += ${name}_r * ${strides[d]}u;`);
    } else {
      if (strides[d] !== 0) lines.push(`${name} += (${name}_r % ${size}u) * ${strides[d]}u;`);
      lines.push(`${name}_r = ${name}_r / ${size}u;`);
    }
  }
  return lines.join('\n  ');
}
