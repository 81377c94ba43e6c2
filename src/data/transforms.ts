/**
 * Composable, seeded image transforms in the style of torchvision.transforms. Each transform has
 * a plain-data description (`toJSON`) so that a pipeline can be rebuilt in a loader worker with
 * `transformFromJSON`.
 */
import * as F from './functional.js';
import type { Image } from './image.js';
import type { Rng } from './rng.js';

/** Plain-data description of a transform, as produced by `toJSON`. */
export type TransformSpec =
  | { name: 'Compose'; transforms: TransformSpec[] }
  | { name: 'Resize'; size: [number, number] }
  | { name: 'Grayscale'; numOutputChannels: number }
  | { name: 'ColorJitter'; brightness: Range | null; contrast: Range | null; saturation: Range | null; hue: Range | null }
  | { name: 'RandomHorizontalFlip'; p: number }
  | { name: 'RandomAffine'; degrees: Range; translate: [number, number] | null; scale: Range | null }
  | { name: 'ToTensor' }
  | { name: 'Normalize'; mean: number[]; std: number[] };

/** An inclusive [min, max] range of a random parameter. */
export type Range = [number, number];

/** An image transform; random ones draw from `rng` only. */
export interface Transform {
  apply(img: Image, rng: Rng): Image;
  toJSON(): TransformSpec;
}

/** Applies transforms in order. */
export class Compose implements Transform {
  constructor(readonly transforms: readonly Transform[]) {}
  apply(img: Image, rng: Rng): Image {
    return this.transforms.reduce((x, t) => t.apply(x, rng), img);
  }
  toJSON(): TransformSpec {
    return { name: 'Compose', transforms: this.transforms.map((t) => t.toJSON()) };
  }
}

/** Bilinear resize to [height, width] (antialias off, half-pixel centres). */
export class Resize implements Transform {
  readonly size: [number, number];
  constructor(size: readonly [number, number]) {
    if (size.length !== 2 || !size.every((s) => Number.isInteger(s) && s > 0)) {
      throw new Error(`Resize: size must be [height, width] positive integers, got [${size.join(', ')}]`);
    }
    this.size = [size[0], size[1]];
  }
  apply(img: Image): Image {
    return F.resize(img, this.size);
  }
  toJSON(): TransformSpec {
    return { name: 'Resize', size: this.size };
  }
}

/** Converts to grey with the ITU-R 601-2 luma weights, replicated to 1 or 3 channels. */
export class Grayscale implements Transform {
  constructor(readonly numOutputChannels = 1) {
    if (numOutputChannels !== 1 && numOutputChannels !== 3) {
      throw new Error(`Grayscale: numOutputChannels must be 1 or 3, got ${numOutputChannels}`);
    }
  }
  apply(img: Image): Image {
    return F.toGrayscale(img, this.numOutputChannels);
  }
  toJSON(): TransformSpec {
    return { name: 'Grayscale', numOutputChannels: this.numOutputChannels };
  }
}

/** Factors drawn by `ColorJitter`; `order` lists 0 brightness, 1 contrast, 2 saturation, 3 hue. */
export interface ColorJitterParams {
  order: number[];
  brightness: number | null;
  contrast: number | null;
  saturation: number | null;
  hue: number | null;
}

/** Turns torchvision's `value | [min, max]` argument into a range, or null when it is a no-op. */
function jitterRange(name: string, value: number | Range, center: number, bound: Range): Range | null {
  const range: Range = typeof value === 'number' ? [center - value, center + value] : [value[0], value[1]];
  if (typeof value === 'number') {
    if (!(value >= 0)) throw new Error(`ColorJitter: ${name} must be non-negative, got ${value}`);
    range[0] = Math.max(range[0], bound[0]);
  }
  if (!(bound[0] <= range[0] && range[0] <= range[1] && range[1] <= bound[1])) {
    throw new Error(`ColorJitter: ${name} range [${range.join(', ')}] must lie within [${bound.join(', ')}]`);
  }
  return range[0] === center && range[1] === center ? null : range;
}

/**
 * Randomly changes brightness, contrast, saturation and hue, in a random order, with torchvision
 * semantics: brightness b draws a factor from [max(0, 1-b), 1+b] and multiplies; contrast blends
 * with the mean grey level; saturation blends with the per-pixel grey; hue h draws a shift from
 * [-h, h] turns in HSV. Results are clamped to [0, 1]. Saturation and hue leave grey images as
 * they are.
 */
export class ColorJitter implements Transform {
  readonly brightness: Range | null;
  readonly contrast: Range | null;
  readonly saturation: Range | null;
  readonly hue: Range | null;

  constructor(options: { brightness?: number | Range; contrast?: number | Range; saturation?: number | Range; hue?: number | Range } = {}) {
    const { brightness = 0, contrast = 0, saturation = 0, hue = 0 } = options;
    this.brightness = jitterRange('brightness', brightness, 1, [0, Infinity]);
    this.contrast = jitterRange('contrast', contrast, 1, [0, Infinity]);
    this.saturation = jitterRange('saturation', saturation, 1, [0, Infinity]);
    this.hue = jitterRange('hue', hue, 0, [-0.5, 0.5]);
  }

  /** Draws the order and the factors in torchvision's order (permutation, b, c, s, h). */
  sampleParams(rng: Rng): ColorJitterParams {
    const draw = (r: Range | null) => (r ? rng.uniform(r[0], r[1]) : null);
    const order = rng.shuffle([0, 1, 2, 3]);
    return { order, brightness: draw(this.brightness), contrast: draw(this.contrast), saturation: draw(this.saturation), hue: draw(this.hue) };
  }

  /** Applies given factors (null = skip) in the given order. */
  static applyWithParams(img: Image, params: ColorJitterParams): Image {
    const ops = [
      (x: Image) => (params.brightness === null ? x : F.adjustBrightness(x, params.brightness)),
      (x: Image) => (params.contrast === null ? x : F.adjustContrast(x, params.contrast)),
      (x: Image) => (params.saturation === null ? x : F.adjustSaturation(x, params.saturation)),
      (x: Image) => (params.hue === null ? x : F.adjustHue(x, params.hue)),
    ];
    return params.order.reduce((x, k) => {
      const op = ops[k];
      if (!op) throw new Error(`ColorJitter: bad order entry ${k}, expected 0..3`);
      return op(x);
    }, img);
  }

  apply(img: Image, rng: Rng): Image {
    return ColorJitter.applyWithParams(img, this.sampleParams(rng));
  }
  toJSON(): TransformSpec {
    return { name: 'ColorJitter', brightness: this.brightness, contrast: this.contrast, saturation: this.saturation, hue: this.hue };
  }
}

/** Mirrors the image left to right with probability p. */
export class RandomHorizontalFlip implements Transform {
  constructor(readonly p = 0.5) {
    if (!(p >= 0 && p <= 1)) throw new Error(`RandomHorizontalFlip: p must be in [0, 1], got ${p}`);
  }
  apply(img: Image, rng: Rng): Image {
    return rng.next() < this.p ? F.hflip(img) : img;
  }
  toJSON(): TransformSpec {
    return { name: 'RandomHorizontalFlip', p: this.p };
  }
}

/**
 * Random rotation (degrees d: angle from [-d, d], or a [min, max] range), translation (fractions
 * [fx, fy] of the width/height, rounded to whole pixels) and scale ([min, max]) about the centre;
 * bilinear, fill 0. Parameters are drawn as torchvision's RandomAffine.get_params draws them.
 */
export class RandomAffine implements Transform {
  readonly degrees: Range;
  readonly translate: [number, number] | null;
  readonly scale: Range | null;

  constructor(options: { degrees: number | Range; translate?: [number, number]; scale?: Range }) {
    const { degrees, translate, scale } = options;
    this.degrees = typeof degrees === 'number' ? [-degrees, degrees] : [degrees[0], degrees[1]];
    if (!(this.degrees[0] <= this.degrees[1])) throw new Error(`RandomAffine: bad degrees ${JSON.stringify(degrees)}`);
    if (translate && !translate.every((t) => t >= 0 && t <= 1)) {
      throw new Error(`RandomAffine: translate fractions must be in [0, 1], got [${translate.join(', ')}]`);
    }
    if (scale && !(scale[0] > 0 && scale[0] <= scale[1])) {
      throw new Error(`RandomAffine: scale must be a range [min, max] with 0 < min <= max, got [${scale.join(', ')}]`);
    }
    this.translate = translate ? [translate[0], translate[1]] : null;
    this.scale = scale ? [scale[0], scale[1]] : null;
  }

  sampleParams(rng: Rng, height: number, width: number): F.AffineParams {
    const angle = rng.uniform(this.degrees[0], this.degrees[1]);
    let translate: [number, number] = [0, 0];
    if (this.translate) {
      const mx = this.translate[0] * width;
      const my = this.translate[1] * height;
      translate = [Math.round(rng.uniform(-mx, mx)), Math.round(rng.uniform(-my, my))];
    }
    const scale = this.scale ? rng.uniform(this.scale[0], this.scale[1]) : 1;
    return { angle, translate, scale };
  }

  apply(img: Image, rng: Rng): Image {
    return F.affine(img, this.sampleParams(rng, img.height, img.width));
  }
  toJSON(): TransformSpec {
    return { name: 'RandomAffine', degrees: this.degrees, translate: this.translate, scale: this.scale };
  }
}

/**
 * Identity, kept for parity with torchvision pipelines: our decoder already yields CHW floats in
 * [0, 1], which is what torchvision's ToTensor produces from a PIL image.
 */
export class ToTensor implements Transform {
  apply(img: Image): Image {
    return img;
  }
  toJSON(): TransformSpec {
    return { name: 'ToTensor' };
  }
}

/** (img - mean[c]) / std[c]; the channel count must match. */
export class Normalize implements Transform {
  readonly mean: number[];
  readonly std: number[];
  constructor(mean: readonly number[], std: readonly number[]) {
    if (mean.length === 0 || mean.length !== std.length) {
      throw new Error(`Normalize: mean (${mean.length} values) and std (${std.length}) must be equally long and non-empty`);
    }
    this.mean = [...mean];
    this.std = [...std];
  }
  apply(img: Image): Image {
    return F.normalize(img, this.mean, this.std);
  }
  toJSON(): TransformSpec {
    return { name: 'Normalize', mean: this.mean, std: this.std };
  }
}

/** Rebuilds a transform from its `toJSON()` description. */
export function transformFromJSON(spec: TransformSpec): Transform {
  switch (spec.name) {
    case 'Compose':
      return new Compose(spec.transforms.map(transformFromJSON));
    case 'Resize':
      return new Resize(spec.size);
    case 'Grayscale':
      return new Grayscale(spec.numOutputChannels);
    case 'ColorJitter':
      // A null range is a no-op, which the numeric argument 0 (hue: 0) reproduces.
      return new ColorJitter({
        brightness: spec.brightness ?? 0,
        contrast: spec.contrast ?? 0,
        saturation: spec.saturation ?? 0,
        hue: spec.hue ?? 0,
      });
    case 'RandomHorizontalFlip':
      return new RandomHorizontalFlip(spec.p);
    case 'RandomAffine':
      return new RandomAffine({ degrees: spec.degrees, translate: spec.translate ?? undefined, scale: spec.scale ?? undefined });
    case 'ToTensor':
      return new ToTensor();
    case 'Normalize':
      return new Normalize(spec.mean, spec.std);
    default:
      throw new Error(`transformFromJSON: unknown transform ${JSON.stringify((spec as { name?: unknown }).name)}`);
  }
}
