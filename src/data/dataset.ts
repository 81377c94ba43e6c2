/** Datasets: the interface the loader consumes, and the NIH ChestX-ray14 dataset. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import type { Image } from './image.js';
import { encodeLabels, type NihRecord } from './nih.js';
import { readImage } from './png.js';
import type { Rng } from './rng.js';
import { Compose, Resize, transformFromJSON, type Transform, type TransformSpec } from './transforms.js';

/** How a loader worker rebuilds a dataset: `module` (a file URL) exports `createDataset(args)`. */
export interface WorkerInit {
  module: string;
  args: unknown;
}

/** A map-style dataset, as torch.utils.data.Dataset. */
export interface Dataset<T> {
  readonly length: number;
  /** Item i; random transforms draw from `rng` only. */
  getItem(i: number, rng: Rng): Promise<T> | T;
  /** Name of item i, for error messages. */
  itemName?(i: number): string;
  /** Present on datasets that can be loaded in worker threads. */
  workerInit?(): WorkerInit;
}

/** One labelled image. */
export interface Sample {
  image: Image;
  label: Float32Array;
  name: string;
}

/** Options of `NihDataset`. */
export interface NihDatasetOptions {
  /** Applied to the decoded 1-channel image (default: none). */
  transform?: Transform;
  /** Label classes (default FINDINGS). */
  classes?: readonly string[];
  /** Adds a 'No Finding' label column. */
  noFindingColumn?: boolean;
  /** 'error' (default) throws on a missing or corrupt image; 'skip' returns null and counts it. */
  onUnreadable?: 'skip' | 'error';
  /**
   * Directory caching the output of the transform's leading Resize (which must exist) as raw
   * native-endian Float32 files `<image>.<h>x<w>.f32`: decoding 1024x1024 PNGs is the slow part.
   */
  cacheDir?: string;
}

/** The plain-data arguments NihDataset sends to loader workers. */
export interface NihDatasetArgs {
  records: NihRecord[];
  paths: [string, string][];
  transform: TransformSpec | null;
  options: Omit<NihDatasetOptions, 'transform'>;
}

/** Splits a pipeline into its deterministic leading Resize (cacheable) and the rest. */
function splitLeadingResize(t: Transform | undefined): [Resize | null, Transform | null] {
  if (t instanceof Resize) return [t, null];
  if (t instanceof Compose && t.transforms[0] instanceof Resize) {
    return [t.transforms[0], t.transforms.length > 1 ? new Compose(t.transforms.slice(1)) : null];
  }
  return [null, t ?? null];
}

/** NIH ChestX-ray14 images with multi-hot labels; items are `{ image, label, name }`. */
export class NihDataset implements Dataset<Sample | null> {
  /** Items skipped as unreadable by this instance (in this thread). */
  skipped = 0;
  private readonly labels: Float32Array[];
  private readonly resize: Resize | null;
  private readonly rest: Transform | null;

  constructor(
    readonly records: readonly NihRecord[],
    readonly paths: ReadonlyMap<string, string>,
    readonly options: NihDatasetOptions = {},
  ) {
    const { classes, noFindingColumn, onUnreadable = 'error', cacheDir, transform } = options;
    if (onUnreadable !== 'skip' && onUnreadable !== 'error') {
      throw new Error(`NihDataset: onUnreadable must be 'skip' or 'error', got '${String(onUnreadable)}'`);
    }
    this.labels = records.map((r) => encodeLabels(r.labels, { classes, noFindingColumn, image: r.imageIndex }));
    [this.resize, this.rest] = splitLeadingResize(transform);
    if (cacheDir !== undefined) {
      if (!this.resize) throw new Error('NihDataset: cacheDir needs a transform that starts with Resize (the cached step)');
      mkdirSync(cacheDir, { recursive: true });
    }
  }

  get length(): number {
    return this.records.length;
  }

  itemName(i: number): string {
    return this.record(i).imageIndex;
  }

  getItem(i: number, rng: Rng): Sample | null {
    const name = this.record(i).imageIndex;
    const cacheFile = this.cacheFile(name);
    let image = cacheFile ? readCache(cacheFile, this.resize as Resize) : null;
    if (!image) {
      try {
        image = this.load(name);
      } catch (e) {
        if (this.options.onUnreadable !== 'skip') throw e;
        this.skipped++;
        return null;
      }
      if (cacheFile) writeCache(cacheFile, image);
    }
    if (this.rest) image = this.rest.apply(image, rng);
    return { image, label: this.labels[i], name };
  }

  workerInit(): WorkerInit {
    const { transform, ...options } = this.options;
    const paths = this.records.flatMap((r): [string, string][] => {
      const p = this.paths.get(r.imageIndex);
      return p === undefined ? [] : [[r.imageIndex, p]];
    });
    const args: NihDatasetArgs = { records: [...this.records], paths, transform: transform?.toJSON() ?? null, options };
    return { module: import.meta.url, args };
  }

  private record(i: number): NihRecord {
    const r = this.records[i];
    if (!Number.isInteger(i) || !r) throw new Error(`NihDataset: index ${i} out of range [0, ${this.records.length})`);
    return r;
  }

  /** Decoded image after the leading Resize, if any. */
  private load(name: string): Image {
    const path = this.paths.get(name);
    if (path === undefined) throw new Error(`image file ${name} not found (not in the image path map)`);
    const image = readImage(path);
    return this.resize ? this.resize.apply(image) : image;
  }

  private cacheFile(name: string): string | null {
    const dir = this.options.cacheDir;
    if (dir === undefined || !this.resize) return null;
    if (basename(name) !== name) throw new Error(`NihDataset: image name ${name} cannot be a cache file name`);
    return join(dir, `${name}.${this.resize.size[0]}x${this.resize.size[1]}.f32`);
  }
}

/** The cached 1-channel image, or null when absent or of the wrong size (then it is rewritten). */
function readCache(file: string, resize: Resize): Image | null {
  const [height, width] = resize.size;
  const bytes = height * width * Float32Array.BYTES_PER_ELEMENT;
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return null;
  }
  if (buf.byteLength !== bytes) return null;
  return { data: new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + bytes)), channels: 1, height, width };
}

function writeCache(file: string, image: Image): void {
  if (image.channels !== 1) throw new Error(`NihDataset: the cache holds 1-channel images, ${file} would get ${image.channels}`);
  // Write then rename, so a concurrent reader (another worker) never sees a partial file.
  const tmp = `${file}.${process.pid}.${threadId}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength));
  renameSync(tmp, file);
}

/** Worker-side constructor of NihDataset (see `NihDataset.workerInit`). */
export function createDataset(args: NihDatasetArgs): NihDataset {
  const transform = args.transform ? transformFromJSON(args.transform) : undefined;
  return new NihDataset(args.records, new Map(args.paths), { ...args.options, transform });
}
