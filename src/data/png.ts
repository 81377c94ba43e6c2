/** PNG decoding to grey float images (the NIH release is PNG), and encoding for fixtures. */
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { createImage, checkImage, type Image } from './image.js';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * Checks the chunk structure and returns the bytes without tRNS chunks. pngjs reports truncation
 * poorly ("read requests waiting on finished stream"), so walk the chunks first to name the
 * problem; tRNS is dropped because pngjs zeroes the colour of colour-keyed pixels, while we ignore
 * alpha (as PIL's convert('L') does).
 */
function checkChunks(bytes: Uint8Array, fail: (reason: string) => Error): Uint8Array {
  if (bytes.length < SIGNATURE.length || SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw fail('not a PNG file (bad signature)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kept: Uint8Array[] = [bytes.subarray(0, 8)];
  let dropped = false;
  let pos = 8;
  for (;;) {
    if (pos + 8 > bytes.length) throw fail(`truncated at byte ${bytes.length} (no IEND chunk)`);
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const end = pos + 12 + length;
    if (pos === 8 && type !== 'IHDR') throw fail(`first chunk is '${type}', expected IHDR`);
    if (end > bytes.length) {
      throw fail(`truncated: chunk ${type} at byte ${pos} needs ${end - pos} bytes, ${bytes.length - pos} left`);
    }
    if (type === 'tRNS') dropped = true;
    else kept.push(bytes.subarray(pos, end));
    pos = end;
    if (type === 'IEND') break;
  }
  if (!dropped) return bytes;
  const out = new Uint8Array(kept.reduce((n, k) => n + k.length, 0));
  let at = 0;
  for (const k of kept) {
    out.set(k, at);
    at += k.length;
  }
  return out;
}

/**
 * Decodes a PNG of any colour type (grey, grey+alpha, RGB, RGBA, palette) and bit depth (1–16) to
 * a 1-channel grey image with values in [0, 1] (samples divided by 2^depth - 1; palette entries
 * by 255). Colour becomes grey with PIL's convert('L') rule: L = R*299/1000 + G*587/1000 +
 * B*114/1000 in 16-bit fixed point, rounded to an integer sample as PIL does. Alpha is ignored.
 *
 * @param name used in error messages (e.g. the file path)
 */
export function decodePng(bytes: Uint8Array, name = '<buffer>'): Image {
  const fail = (reason: string) => new Error(`corrupt PNG ${name}: ${reason}`);
  const clean = checkChunks(bytes, fail);
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    // skipRescale keeps 16-bit samples (pngjs would otherwise reduce them to 8 bits).
    png = PNG.sync.read(Buffer.from(clean.buffer, clean.byteOffset, clean.byteLength), { skipRescale: true });
  } catch (e) {
    throw fail(e instanceof Error ? e.message : String(e));
  }
  const { width, height } = png;
  // RGBA per pixel: a Buffer for depth <= 8, a Uint16Array for depth 16 (the typings say Buffer).
  const rgba = png.data as unknown as ArrayLike<number>;
  if (rgba.length !== width * height * 4) throw fail(`decoded ${rgba.length} samples for ${width}x${height}`);
  const max = png.palette ? 255 : 2 ** png.depth - 1;
  const img = createImage(1, height, width);
  const out = img.data;
  for (let p = 0, q = 0; p < out.length; p++, q += 4) {
    const level = png.color
      ? Math.floor((rgba[q] * 19595 + rgba[q + 1] * 38470 + rgba[q + 2] * 7471 + 0x8000) / 0x10000)
      : rgba[q];
    out[p] = level / max;
  }
  return img;
}

/** Reads and decodes a PNG file; errors name the path. */
export function readImage(path: string): Image {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`image file not found: ${path}`);
    throw new Error(`cannot read image ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return decodePng(bytes, path);
}

/**
 * Encodes a 1-channel (grey) or 3-channel (RGB) image as an 8-bit PNG; values are clamped to
 * [0, 1] and rounded to 1/255 steps. Meant for test fixtures and synthetic data.
 */
export function encodePng(img: Image): Uint8Array {
  checkImage(img, 'encodePng');
  const { channels, height, width, data } = img;
  if (channels !== 1 && channels !== 3) {
    throw new Error(`encodePng: expected 1 or 3 channels, got ${channels}`);
  }
  const png = new PNG({ width, height });
  const plane = height * width;
  const to8 = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) png.data[4 * p + c] = to8(data[(channels === 1 ? 0 : c) * plane + p]);
    png.data[4 * p + 3] = 255;
  }
  const bytes = PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2 });
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
