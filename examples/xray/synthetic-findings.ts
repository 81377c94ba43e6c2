/** The 14 findings and how each is drawn on a phantom, with the look that defines it on a radiograph. */
import { type Anatomy, type Heart, type Lung, lungBox, lungDistance, lungMask } from './synthetic-anatomy.js';
import { type Box, Canvas, clamp01, ell, inside, Rng, segmentDistance, smooth, valueNoise } from './synthetic-canvas.js';

/** The 14 NIH ChestX-ray14 findings, in the order of the released paper and of model outputs. */
export const FINDINGS = [
  'Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia',
  'Pneumothorax', 'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia',
] as const;
export type Finding = (typeof FINDINGS)[number];

/**
 * Lucent rim without lung markings around a collapsed lung, edged by a thin bright pleural line.
 * Drawn right after the lung fields, so the heart and bones still overlie it.
 */
export function drawPneumothorax(c: Canvas, l: Lung, lucent: (x: number, y: number) => number): void {
  const collapsed: Lung = { ...l, rx: l.rx * 0.68, ry: l.ry * 0.76, cx: l.cx - l.dir * l.rx * 0.22, cy: l.cy + l.ry * 0.14 };
  const box = lungBox(l);
  c.mix(box, (x, y) => lungMask(l, x, y) * (1 - lungMask(collapsed, x, y)), lucent);
  c.add(box, (x, y) => 0.06 * lungMask(collapsed, x, y));
  c.add(box, (x, y) => {
    const d = lungDistance(collapsed, x, y);
    const e = ((d - 1) * collapsed.rx) / 0.006;
    return 0.3 * Math.exp(-e * e) * lungMask(l, x, y) * (y < collapsed.baseY - 0.03 ? 1 : 0);
  });
}

/** Random point well inside a lung (rejection sampling on the lung mask). */
function pointInLung(r: Rng, l: Lung, yMin = 0): [number, number] {
  for (let tries = 0; tries < 1000; tries++) {
    const x = l.cx + r.uniform(-0.75, 0.75) * l.rx;
    const y = r.uniform(Math.max(yMin, l.cy - l.ry * 0.8), l.baseY - 0.05);
    if (lungMask(l, x, y) > 0.95) return [x, y];
  }
  // Unreachable for the lung shapes drawn here; the centre keeps the loop bounded regardless.
  return [l.cx, l.cy];
}

/**
 * Draws every finding but pneumothorax (see {@link drawPneumothorax}) over the normal anatomy;
 * `lungs` and `heart` are as drawn, after the findings that change them.
 */
export function drawFindings(c: Canvas, a: Anatomy, lungs: [Lung, Lung], has: (f: Finding) => boolean, r: Rng,
  lungValue: number, heart: Heart): void {
  const pickLung = (): Lung => lungs[r.side() === -1 ? 0 : 1];
  const sides = (): Lung[] => (r.chance(0.3) ? lungs : [pickLung()]);
  const blob = (cx: number, cy: number, rad: number, amount: number, edge = 0.3): void =>
    c.add([cx - rad * 1.3, cy - rad * 1.3, cx + rad * 1.3, cy + rad * 1.3],
      (x, y) => amount * inside(ell(x, y, cx, cy, rad, rad), edge));
  if (has('Atelectasis')) {
    // Wedge from the hilum towards the lateral base, on the side whose volume was reduced.
    const l = lungs.find((k) => k.rx < a.lungRx * 0.97) ?? lungs[0];
    const hx = l.cx - l.dir * 0.5 * l.rx;
    const hy = l.cy + 0.05;
    const angle = r.uniform(0.45, 0.75);
    c.add(lungBox(l), (x, y) => {
      const dx = (x - hx) * l.dir;
      const dy = y - hy;
      const off = Math.abs(Math.atan2(dy, dx) - angle);
      return 0.3 * smooth((0.3 - off) / 0.08) * smooth(dx / 0.02) * lungMask(l, x, y);
    });
  }
  if (has('Effusion')) {
    for (const l of sides()) {
      // Fluid fills the base and climbs the lateral wall: a meniscus concave upwards.
      const level = l.baseY - r.uniform(0.1, 0.16);
      c.mix(lungBox(l), (x, y) => {
        const lateral = clamp01(0.5 + (0.5 * (x - l.cx) * l.dir) / l.rx);
        const top = level - 0.07 * lateral * lateral;
        return 0.92 * smooth((y - top) / 0.015 + 0.5) * inside(lungDistance(l, x, y), 0.08) * (y < l.baseY + 0.01 ? 1 : 0);
      }, a.tissue * 0.95);
    }
  }
  if (has('Infiltration')) {
    for (let k = r.between(3, 6); k > 0; k--) {
      const l = pickLung();
      const [x0, y0] = pointInLung(r, l);
      const rad = r.uniform(0.035, 0.06);
      const patch = valueNoise(r, 24);
      c.add([x0 - rad * 2, y0 - rad * 2, x0 + rad * 2, y0 + rad * 2], (x, y) =>
        0.24 * Math.exp(-(ell(x, y, x0, y0, rad, rad) ** 2)) * (0.7 + 0.6 * patch(x, y)) * lungMask(l, x, y));
    }
  }
  if (has('Mass')) {
    const l = pickLung();
    const [x0, y0] = pointInLung(r, l);
    const rad = r.uniform(0.06, 0.085);
    const lobes = r.uniform(0, 2 * Math.PI);
    c.add([x0 - rad * 1.4, y0 - rad * 1.4, x0 + rad * 1.4, y0 + rad * 1.4], (x, y) =>
      0.32 * inside(ell(x, y, x0, y0, rad, rad) / (1 + 0.08 * Math.sin(3 * Math.atan2(y - y0, x - x0) + lobes)), 0.15));
  }
  if (has('Nodule')) {
    for (let k = r.between(1, 3); k > 0; k--) {
      const [x0, y0] = pointInLung(r, pickLung());
      blob(x0, y0, r.uniform(0.03, 0.042), 0.32);
    }
  }
  if (has('Pneumonia')) {
    // Upper-lobe consolidation ending sharply at the horizontal fissure.
    const l = pickLung();
    const fissure = l.cy + r.uniform(-0.02, 0.03);
    c.mix(lungBox(l), (x, y) => 0.85 * smooth((fissure - y) / 0.006 + 0.5) * lungMask(l, x, y), a.tissue * 0.92);
  }
  if (has('Consolidation')) {
    // Dense, ill-defined region in the lower zone, crossed by dark air bronchograms.
    const l = pickLung();
    const [x0, y0] = pointInLung(r, l, l.cy + 0.02);
    const rad = r.uniform(0.08, 0.1);
    const region = (x: number, y: number): number => inside(ell(x, y, x0, y0, rad, rad * 0.85), 0.5) * lungMask(l, x, y);
    const box: Box = [x0 - rad * 1.5, y0 - rad * 1.5, x0 + rad * 1.5, y0 + rad * 1.5];
    c.mix(box, (x, y) => 0.9 * region(x, y), a.tissue * 0.9);
    const hilum: [number, number] = [l.cx - l.dir * 0.7 * l.rx, l.cy];
    for (let k = r.between(2, 3); k > 0; k--) {
      const end: [number, number] = [x0 + r.uniform(-0.8, 0.8) * rad, y0 + r.uniform(-0.8, 0.8) * rad];
      c.add(box, (x, y) => -0.22 * inside(segmentDistance(x, y, hilum, end) / 0.007, 0.6) * region(x, y));
    }
  }
  if (has('Edema')) {
    for (const l of lungs) {
      // Bat-wing haze around both hila, plus short horizontal septal lines at the lateral bases.
      const hx = l.cx - l.dir * 0.45 * l.rx;
      c.add(lungBox(l), (x, y) => {
        const bat = 0.26 * Math.exp(-(((x - hx) / 0.08) ** 2) - (((y - l.cy - 0.03) / 0.13) ** 2));
        const lateral = (x - l.cx) * l.dir > 0.5 * l.rx && y > l.baseY - 0.1 ? 1 : 0;
        const kerley = 0.12 * lateral * Math.max(0, Math.cos((2 * Math.PI * y) / 0.025)) ** 8;
        return (bat + kerley) * lungMask(l, x, y);
      });
    }
  }
  if (has('Fibrosis')) {
    const warp = valueNoise(r, 16);
    for (const l of lungs) {
      // Irregular reticular net in the upper zones.
      c.add(lungBox(l), (x, y) => {
        const upper = smooth((l.cy + 0.04 - y) / 0.08);
        if (upper === 0) return 0;
        const w = 0.7 * warp(x, y);
        const net = Math.max(Math.abs(Math.cos(2 * Math.PI * (x / 0.05 + w))), Math.abs(Math.cos(2 * Math.PI * (y / 0.05 - w))));
        return 0.2 * upper * net ** 12 * lungMask(l, x, y);
      });
    }
  }
  if (has('Pleural_Thickening')) {
    for (const l of sides()) {
      const t = r.uniform(0.022, 0.032) / l.rx;
      c.mix(lungBox(l), (x, y) => {
        const d = lungDistance(l, x, y);
        return smooth((d - (1 - t)) / 0.05) * smooth(((x - l.cx) * l.dir) / 0.03) * lungMask(l, x, y) * (y < l.baseY - 0.02 ? 1 : 0);
      }, a.tissue * 1.1);
    }
  }
  if (has('Hernia')) {
    // Retrocardiac gas-filled sac with an air-fluid level, at the base behind the heart.
    const x0 = heart.cx - 0.02;
    const y0 = lungs[1].baseY - 0.03;
    const rad = r.uniform(0.06, 0.075);
    const level = y0 + 0.15 * rad;
    c.mix([x0 - rad * 1.2, y0 - rad * 1.2, x0 + rad * 1.2, y0 + rad * 1.2], (x, y) =>
      inside(ell(x, y, x0, y0, rad, rad), 0.15), (_x, y) => (y < level ? lungValue * 0.7 : a.heart * 1.25));
  }
}
