/** Anatomy of the synthetic radiographs: per-patient body, lung and heart geometry and exposure. */
import { Rng, type Box, ell, inside, smooth } from './synthetic-canvas.js';

/** Per-patient anatomy of a phantom; all lengths normalised to the image side. */
export interface Anatomy {
  /** Body midline. */
  cx: number;
  /** Horizontal distance from the midline to each lung's centre, and lung semi-axes / centre height. */
  lungDx: number; lungRx: number; lungRy: number; lungCy: number;
  /** Diaphragm height at the costophrenic angles and the height of its dome. */
  baseY: number; domeH: number;
  /** Cardiothoracic ratio (heart width / thoracic width) and the heart's short semi-axis. */
  ctr: number; heartRy: number;
  /** Grey levels in [0, 1]. */
  background: number; tissue: number; lung: number; heart: number;
  /** Posterior rib spacing and curvature. */
  ribPeriod: number; ribCurve: number;
  /** Exposure: output = (offset + contrast · v)^gamma. */
  contrast: number; offset: number; gamma: number;
}

/** Samples a patient's anatomy: body size, lung and heart geometry, exposure. */
export function sampleAnatomy(seed: number): Anatomy {
  const r = new Rng(seed);
  const lungRy = r.uniform(0.25, 0.29);
  const lungCy = r.uniform(0.42, 0.46);
  return {
    cx: 0.5 + 0.012 * r.normal(), lungDx: r.uniform(0.155, 0.185), lungRx: r.uniform(0.115, 0.135), lungRy, lungCy,
    baseY: lungCy + 0.85 * lungRy, domeH: r.uniform(0.04, 0.06),
    ctr: r.uniform(0.38, 0.46), heartRy: r.uniform(0.085, 0.1),
    background: r.uniform(0.02, 0.08), tissue: r.uniform(0.5, 0.58), lung: r.uniform(0.16, 0.24),
    heart: r.uniform(0.64, 0.7), ribPeriod: r.uniform(0.055, 0.07), ribCurve: r.uniform(0.8, 1.4),
    contrast: r.uniform(0.85, 1.15), offset: r.uniform(-0.04, 0.04), gamma: r.uniform(0.85, 1.15),
  };
}

/** Small differences between a patient's follow-up films: positioning and exposure. */
export function jitterAnatomy(a: Anatomy, r: Rng): Anatomy {
  return {
    ...a, cx: a.cx + 0.008 * r.normal(), lungCy: a.lungCy + 0.006 * r.normal(),
    baseY: a.baseY + 0.006 * r.normal(), contrast: a.contrast * r.uniform(0.95, 1.05),
    offset: a.offset + 0.015 * r.normal(),
  };
}

/** One lung as drawn: `dir` is −1 for the viewer's left lung, +1 for the right. */
export interface Lung { dir: -1 | 1; cx: number; cy: number; rx: number; ry: number; baseY: number; domeH: number }

/** Normalised distance from a lung's centre (1 on its outline); lungs are narrower at the apex than at the base. */
export function lungDistance(l: Lung, x: number, y: number): number {
  const t = Math.max(-1, Math.min(1, (y - l.cy) / l.ry));
  return ell(x, y, l.cx, l.cy, l.rx * (1 + 0.15 * t), l.ry);
}

/** Opacity of a lung field: the lung outline cut from below by the diaphragm dome. */
export function lungMask(l: Lung, x: number, y: number): number {
  const u = (x - l.cx) / l.rx;
  const diaphragm = l.baseY - l.domeH * Math.max(0, 1 - u * u);
  return inside(lungDistance(l, x, y), 0.08) * smooth((diaphragm - y) / 0.012 + 0.5);
}

/** Box holding a lung, for drawing. */
export const lungBox = (l: Lung): Box => [l.cx - l.rx * 1.25, l.cy - l.ry * 1.1, l.cx + l.rx * 1.25, l.baseY + 0.02];

/** Lungs of an anatomy before any finding changes them. */
export function baseLungs(a: Anatomy): [Lung, Lung] {
  const lung = (dir: -1 | 1): Lung => ({
    dir, cx: a.cx + dir * a.lungDx, cy: a.lungCy, rx: a.lungRx, ry: a.lungRy, baseY: a.baseY, domeH: a.domeH,
  });
  return [lung(-1), lung(1)];
}

/** The heart as drawn: an ellipse tilted so that its apex points down towards the viewer's right. */
export interface Heart { cx: number; cy: number; rx: number; ry: number; tilt: number; left: number; right: number }

/**
 * The heart whose width is `ctr` × the thoracic width (outer lung edges), resting on the diaphragm
 * at `baseY`, a third of it right of the patient's midline (viewer's left) as on a normal PA film.
 */
export function heartOf(a: Anatomy, ctr: number, ry: number, baseY: number): Heart {
  const tilt = 0.4;
  const [cos, sin] = [Math.cos(tilt), Math.sin(tilt)];
  const half = (ctr * 2 * (a.lungDx + a.lungRx)) / 2;
  // Long semi-axis giving the wanted horizontal half-extent sqrt(rx²cos² + ry²sin²).
  const rx = Math.sqrt(Math.max(ry * ry, (half * half - ry * ry * sin * sin) / (cos * cos)));
  const halfHeight = Math.sqrt(rx * rx * sin * sin + ry * ry * cos * cos);
  const cx = a.cx + half / 3;
  return { cx, cy: baseY - 0.8 * halfHeight, rx, ry, tilt, left: cx - half, right: cx + half };
}

/** Normalised distance from the heart's centre, 1 on its outline. */
export function heartDistance(h: Heart, x: number, y: number): number {
  const dx = x - h.cx;
  const dy = y - h.cy;
  const [cos, sin] = [Math.cos(h.tilt), Math.sin(h.tilt)];
  const u = (dx * cos + dy * sin) / h.rx;
  const v = (dy * cos - dx * sin) / h.ry;
  return Math.sqrt(u * u + v * v);
}
