/** Drawing primitives for the synthetic radiographs: a seeded RNG, soft shapes, value noise, a float canvas. */
import { data } from '@lib/nn';

/** The library's seeded generator, plus the draws the phantom needs. */
export class Rng extends data.Rng {
  /** Integer in [a, b], both included. */
  between(a: number, b: number): number {
    return a + this.int(b - a + 1);
  }
  uint32(): number {
    return this.int(0x100000000);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** −1 or +1 with equal odds: which lung. */
  side(): -1 | 1 {
    return this.next() < 0.5 ? -1 : 1;
  }
  /** Index drawn in proportion to `weights`. */
  weighted(weights: readonly number[]): number {
    let u = this.next() * weights.reduce((s, w) => s + w, 0);
    for (let i = 0; i < weights.length; i++) if ((u -= weights[i]) < 0) return i;
    return weights.length - 1;
  }
}

/** Axis-aligned box in normalised coordinates: [x0, y0, x1, y1]. */
export type Box = readonly [number, number, number, number];

export const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Smoothstep of t clamped to [0, 1]: soft edges without aliasing. */
export const smooth = (t: number): number => {
  const u = clamp01(t);
  return u * u * (3 - 2 * u);
};

/** Normalised elliptical distance: 0 at the centre, 1 on the outline. */
export const ell = (x: number, y: number, cx: number, cy: number, rx: number, ry: number): number => {
  const u = (x - cx) / rx;
  const v = (y - cy) / ry;
  return Math.sqrt(u * u + v * v);
};

/** Opacity of a filled shape from a distance that is 1 on its outline; `edge` is the blur width in the same units. */
export const inside = (d: number, edge: number): number => smooth((1 - d) / edge + 0.5);

/** Distance from (x, y) to the segment p–q. */
export function segmentDistance(x: number, y: number, p: [number, number], q: [number, number]): number {
  const dx = q[0] - p[0];
  const dy = q[1] - p[1];
  const t = clamp01(((x - p[0]) * dx + (y - p[1]) * dy) / (dx * dx + dy * dy));
  const u = x - p[0] - t * dx;
  const v = y - p[1] - t * dy;
  return Math.sqrt(u * u + v * v);
}

/** Smooth value noise in [−1, 1] on a `cells × cells` grid over the unit square. */
export function valueNoise(rng: Rng, cells: number): (x: number, y: number) => number {
  const n = cells + 1;
  const grid = new Float32Array(n * n);
  for (let i = 0; i < grid.length; i++) grid[i] = rng.uniform(-1, 1);
  return (x, y) => {
    const fx = clamp01(x) * cells;
    const fy = clamp01(y) * cells;
    const i = Math.min(cells - 1, Math.floor(fx));
    const j = Math.min(cells - 1, Math.floor(fy));
    const tx = smooth(fx - i);
    const ty = smooth(fy - j);
    const top = grid[j * n + i] * (1 - tx) + grid[j * n + i + 1] * tx;
    const bottom = grid[(j + 1) * n + i] * (1 - tx) + grid[(j + 1) * n + i + 1] * tx;
    return top * (1 - ty) + bottom * ty;
  };
}

/** Square float image drawn in normalised coordinates; shapes touch only the pixels of their box. */
export class Canvas {
  readonly px: Float32Array;
  constructor(readonly size: number) {
    this.px = new Float32Array(size * size);
  }
  fill(value: number): void {
    this.px.fill(value);
  }
  /** Calls `f` with the normalised centre and index of every pixel in `box`. */
  each(box: Box, f: (x: number, y: number, i: number) => void): void {
    const s = this.size;
    const j0 = Math.max(0, Math.floor(box[0] * s));
    const j1 = Math.min(s, Math.ceil(box[2] * s));
    const i0 = Math.max(0, Math.floor(box[1] * s));
    const i1 = Math.min(s, Math.ceil(box[3] * s));
    for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) f((j + 0.5) / s, (i + 0.5) / s, i * s + j);
  }
  /** Blends towards `value` with opacity `alpha(x, y)`. */
  mix(box: Box, alpha: (x: number, y: number) => number, value: number | ((x: number, y: number) => number)): void {
    this.each(box, (x, y, i) => {
      const a = alpha(x, y);
      if (a > 0) this.px[i] += a * ((typeof value === 'number' ? value : value(x, y)) - this.px[i]);
    });
  }
  /** Adds `delta(x, y)`. */
  add(box: Box, delta: (x: number, y: number) => number): void {
    this.each(box, (x, y, i) => {
      this.px[i] += delta(x, y);
    });
  }
}
