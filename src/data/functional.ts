/**
 * Pure image operations behind the transforms (torchvision.transforms.functional, tensor
 * semantics). Every function returns a new image and leaves its input untouched.
 */
import { checkImage, createImage, type Image } from './image.js';

/** ITU-R 601-2 luma weights, as PIL's convert('L') uses. */
export const LUMA = [0.299, 0.587, 0.114] as const;

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/**
 * Bilinear resize to [h, w] without antialiasing and with half-pixel centres
 * (align_corners=False), like torchvision's `F.resize(tensor, size, antialias=False)`.
 */
export function resize(img: Image, [outH, outW]: readonly [number, number]): Image {
  checkImage(img, 'resize');
  const out = createImage(img.channels, outH, outW);
  const { height: inH, width: inW } = img;
  // Source coordinate of each output row/column; PyTorch clamps negative ones to 0.
  const axis = (inSize: number, outSize: number) => {
    const i0 = new Int32Array(outSize);
    const i1 = new Int32Array(outSize);
    const t = new Float64Array(outSize);
    for (let o = 0; o < outSize; o++) {
      const src = Math.max(0, ((o + 0.5) * inSize) / outSize - 0.5);
      i0[o] = Math.min(Math.floor(src), inSize - 1);
      i1[o] = Math.min(i0[o] + 1, inSize - 1);
      t[o] = src - i0[o];
    }
    return { i0, i1, t };
  };
  const ys = axis(inH, outH);
  const xs = axis(inW, outW);
  for (let c = 0; c < img.channels; c++) {
    const src = img.data.subarray(c * inH * inW);
    const dst = out.data.subarray(c * outH * outW);
    for (let y = 0; y < outH; y++) {
      const r0 = ys.i0[y] * inW;
      const r1 = ys.i1[y] * inW;
      const ty = ys.t[y];
      for (let x = 0; x < outW; x++) {
        const a = xs.i0[x];
        const b = xs.i1[x];
        const tx = xs.t[x];
        const top = src[r0 + a] + (src[r0 + b] - src[r0 + a]) * tx;
        const bottom = src[r1 + a] + (src[r1 + b] - src[r1 + a]) * tx;
        dst[y * outW + x] = top + (bottom - top) * ty;
      }
    }
  }
  return out;
}

/** Luma plane of a 1- or 3-channel image (a 1-channel image is its own luma). */
function lumaPlane(img: Image, where: string): Float32Array {
  checkImage(img, where);
  if (img.channels === 1) return img.data;
  if (img.channels !== 3) throw new Error(`${where}: expected 1 or 3 channels, got ${img.channels}`);
  const n = img.height * img.width;
  const grey = new Float32Array(n);
  for (let p = 0; p < n; p++) {
    grey[p] = LUMA[0] * img.data[p] + LUMA[1] * img.data[n + p] + LUMA[2] * img.data[2 * n + p];
  }
  return grey;
}

/** Grey image with `numOutputChannels` (1 or 3) copies of the luma of a 1- or 3-channel image. */
export function toGrayscale(img: Image, numOutputChannels: number): Image {
  if (numOutputChannels !== 1 && numOutputChannels !== 3) {
    throw new Error(`toGrayscale: numOutputChannels must be 1 or 3, got ${numOutputChannels}`);
  }
  const grey = lumaPlane(img, 'toGrayscale');
  const out = createImage(numOutputChannels, img.height, img.width);
  for (let c = 0; c < numOutputChannels; c++) out.data.set(grey, c * grey.length);
  return out;
}

/** Mirrors the image left to right. */
export function hflip(img: Image): Image {
  checkImage(img, 'hflip');
  const out = createImage(img.channels, img.height, img.width);
  const w = img.width;
  for (let row = 0; row < img.channels * img.height; row++) {
    for (let x = 0; x < w; x++) out.data[row * w + x] = img.data[row * w + w - 1 - x];
  }
  return out;
}

/** clamp(factor * img): 0 gives black, 1 the original. */
export function adjustBrightness(img: Image, factor: number): Image {
  checkImage(img, 'adjustBrightness');
  const out = createImage(img.channels, img.height, img.width);
  for (let i = 0; i < out.data.length; i++) out.data[i] = clamp01(factor * img.data[i]);
  return out;
}

/** clamp(factor * img + (1 - factor) * mean(luma)): 0 gives uniform grey at the mean. */
export function adjustContrast(img: Image, factor: number): Image {
  const grey = lumaPlane(img, 'adjustContrast');
  let sum = 0;
  for (let p = 0; p < grey.length; p++) sum += grey[p];
  const offset = (1 - factor) * (sum / grey.length);
  const out = createImage(img.channels, img.height, img.width);
  for (let i = 0; i < out.data.length; i++) out.data[i] = clamp01(factor * img.data[i] + offset);
  return out;
}

/** clamp(factor * img + (1 - factor) * luma) per pixel; a no-op on 1-channel images. */
export function adjustSaturation(img: Image, factor: number): Image {
  const grey = lumaPlane(img, 'adjustSaturation');
  if (img.channels === 1) return img;
  const out = createImage(3, img.height, img.width);
  const n = grey.length;
  for (let i = 0; i < out.data.length; i++) out.data[i] = clamp01(factor * img.data[i] + (1 - factor) * grey[i % n]);
  return out;
}

/**
 * Shifts hue by `shift` turns (in [-0.5, 0.5]) in HSV space; a no-op on 1-channel images (and, up
 * to rounding, on grey RGB, whose saturation is 0).
 */
export function adjustHue(img: Image, shift: number): Image {
  if (!(shift >= -0.5 && shift <= 0.5)) throw new Error(`adjustHue: shift must be in [-0.5, 0.5], got ${shift}`);
  lumaPlane(img, 'adjustHue');
  if (img.channels === 1) return img;
  const n = img.height * img.width;
  const out = createImage(3, img.height, img.width);
  const s = img.data;
  const d = out.data;
  for (let p = 0; p < n; p++) {
    const r = s[p];
    const g = s[n + p];
    const b = s[2 * n + p];
    const v = Math.max(r, g, b);
    const chroma = v - Math.min(r, g, b);
    if (chroma === 0) {
      d[p] = r;
      d[n + p] = g;
      d[2 * n + p] = b;
      continue;
    }
    // Hue in sixths of a turn, from which of the three channels is the maximum.
    let h6 = v === r ? (g - b) / chroma : v === g ? 2 + (b - r) / chroma : 4 + (r - g) / chroma;
    h6 = ((((h6 / 6 + shift) % 1) + 1) % 1) * 6;
    // Standard HSV -> RGB: each channel is v minus a piecewise-linear ramp of the hue.
    const channel = (k: number) => {
      const t = (k + h6) % 6;
      return clamp01(v - chroma * Math.max(0, Math.min(t, 4 - t, 1)));
    };
    d[p] = channel(5);
    d[n + p] = channel(3);
    d[2 * n + p] = channel(1);
  }
  return out;
}

/** Parameters of an affine map about the image centre (torchvision `F.affine` conventions). */
export interface AffineParams {
  /** Degrees, clockwise on screen (y points down), as in torchvision's `F.affine`. */
  angle: number;
  /** Pixels [dx, dy], right and down. */
  translate: readonly [number, number];
  scale: number;
}

/** Adds weight * src[:, y, x] to dst[:, pixel] when (y, x) lies inside the image. */
function addTap(src: Image, dst: Image, pixel: number, y: number, x: number, weight: number): void {
  const { channels, height: h, width: w } = src;
  if (y < 0 || y >= h || x < 0 || x >= w || weight === 0) return;
  for (let c = 0; c < channels; c++) dst.data[c * h * w + pixel] += weight * src.data[(c * h + y) * w + x];
}

/**
 * Rotates, scales and translates about the image centre; bilinear sampling, fill 0 outside
 * (grid_sample with zero padding). Output pixel x shows input pixel
 * centre + R(-angle) (x - centre - translate) / scale.
 */
export function affine(img: Image, { angle, translate, scale }: AffineParams): Image {
  checkImage(img, 'affine');
  if (!(scale > 0)) throw new Error(`affine: scale must be positive, got ${scale}`);
  const { channels, height: h, width: w } = img;
  const out = createImage(channels, h, w);
  const rad = (angle * Math.PI) / 180;
  const cos = Math.cos(rad) / scale;
  const sin = Math.sin(rad) / scale;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dx = x - cx - translate[0];
      const dy = y - cy - translate[1];
      const sx = cx + cos * dx + sin * dy;
      const sy = cy - sin * dx + cos * dy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      // The four neighbours; those outside the image read as fill 0.
      addTap(img, out, y * w + x, y0, x0, (1 - fy) * (1 - fx));
      addTap(img, out, y * w + x, y0, x0 + 1, (1 - fy) * fx);
      addTap(img, out, y * w + x, y0 + 1, x0, fy * (1 - fx));
      addTap(img, out, y * w + x, y0 + 1, x0 + 1, fy * fx);
    }
  }
  return out;
}

/** (img - mean[c]) / std[c] per channel. */
export function normalize(img: Image, mean: readonly number[], std: readonly number[]): Image {
  checkImage(img, 'normalize');
  if (mean.length !== img.channels || std.length !== img.channels) {
    throw new Error(
      `normalize: image has ${img.channels} channels but mean has ${mean.length} and std ${std.length} values`,
    );
  }
  if (std.some((s) => !(s > 0))) throw new Error(`normalize: std values must be positive, got [${std.join(', ')}]`);
  const out = createImage(img.channels, img.height, img.width);
  const n = img.height * img.width;
  for (let i = 0; i < out.data.length; i++) {
    const c = Math.floor(i / n);
    out.data[i] = (img.data[i] - mean[c]) / std[c];
  }
  return out;
}
