/**
 * A decoded image: CHW float data, values in [0, 1] straight out of the decoder (transforms such
 * as `Normalize` move them out of that range).
 */
export interface Image {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Allocates a zero image of the given shape. */
export function createImage(channels: number, height: number, width: number): Image {
  for (const [what, v] of [['channels', channels], ['height', height], ['width', width]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`image ${what} must be a positive integer, got ${v}`);
  }
  return { data: new Float32Array(channels * height * width), channels, height, width };
}

/** Throws if `img.data` does not hold exactly channels*height*width values. */
export function checkImage(img: Image, where: string): void {
  const n = img.channels * img.height * img.width;
  if (img.data.length !== n) {
    throw new Error(
      `${where}: image data has ${img.data.length} values, shape ${img.channels}x${img.height}x${img.width} needs ${n}`,
    );
  }
}
