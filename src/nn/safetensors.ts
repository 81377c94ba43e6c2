/**
 * The safetensors format (as written by `safetensors.torch.save_file`): an 8-byte little-endian
 * header length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`
 * and the raw little-endian tensor data. Tensors load as float32; `num_batches_tracked` is written as
 * I64, as PyTorch stores it, so files move between the two libraries by key name.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/ops/index.js';
import type { StateDict } from './module.js';

// Typed arrays use the host's byte order; the file's is little-endian.
const bigEndianHost = endianness() === 'BE';
const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8 };

/** Keys PyTorch stores as int64 (BatchNorm's batch counter). */
const isInt64Key = (name: string) => name === 'num_batches_tracked' || name.endsWith('.num_batches_tracked');

function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes one tensor's bytes (little-endian) to float32. */
function decode(dtype: string, bytes: Buffer, numel: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(numel);
  switch (dtype) {
    case 'F32':
      new Uint8Array(out.buffer).set(bytes);
      if (bigEndianHost) Buffer.from(out.buffer).swap32();
      break;
    case 'F16':
      for (let i = 0; i < numel; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
      break;
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) u[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    case 'I64':
      for (let i = 0; i < numel; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
  }
  return out;
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

interface Parsed {
  entries: [string, Entry][];
  metadata: Record<string, string>;
  dataStart: number;
}

/** The 8-byte header length at the start of a safetensors file of `size` bytes. */
function headerLength(path: string, start: Buffer, size: number): number {
  if (size < 8) throw new Error(`${path}: not a safetensors file (${size} bytes, shorter than the 8-byte header length)`);
  const headerLen = Number(start.readBigUInt64LE(0));
  if (headerLen > size - 8) {
    throw new Error(`${path}: truncated safetensors file: header of ${headerLen} bytes announced, only ${size - 8} bytes follow`);
  }
  return headerLen;
}

/** Parses the header of a file of `size` bytes; `head` holds at least its first 8 + header-length bytes. */
function parseHeader(path: string, head: Buffer, size: number): Parsed {
  const headerLen = headerLength(path, head, size);
  let header: unknown;
  try {
    header = JSON.parse(head.subarray(8, 8 + headerLen).toString('utf8'));
  } catch (e) {
    throw new Error(`${path}: bad safetensors header (not JSON: ${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new Error(`${path}: bad safetensors header (not a JSON object)`);
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const entries: [string, Entry][] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as Partial<Entry>;
    const bad = (why: string) => new Error(`${path}: bad safetensors header entry '${name}': ${why}`);
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) throw bad(`unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(BYTES).join(', ')})`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`invalid shape ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0) || off[1] < off[0]) {
      throw bad(`invalid data_offsets ${JSON.stringify(off)}`);
    }
    const expected = e.shape.reduce((a, b) => a * b, 1) * BYTES[e.dtype];
    if (off[1] - off[0] !== expected) throw bad(`data_offsets [${off}] span ${off[1] - off[0]} bytes, shape [${e.shape}] of ${e.dtype} needs ${expected}`);
    if (off[1] > dataLen) throw new Error(`${path}: truncated safetensors file: tensor '${name}' ends at byte ${off[1]} of the data, which has only ${dataLen} bytes`);
    entries.push([name, e as Entry]);
  }
  return { entries, metadata, dataStart };
}

/**
 * Reads a safetensors file into float32 tensors on the GPU (F32, F16, BF16 and I64 are converted),
 * by key in file order. The caller owns them: dispose them once copied with `loadStateDict`.
 */
export async function loadSafetensors(path: string): Promise<Map<string, Tensor>> {
  const file = await readFile(path);
  const { entries, dataStart } = parseHeader(path, file, file.length);
  const out = new Map<string, Tensor>();
  for (const [name, e] of entries) {
    const [begin, end] = e.data_offsets;
    const numel = e.shape.reduce((a, b) => a * b, 1);
    out.set(name, tensor(decode(e.dtype, file.subarray(dataStart + begin, dataStart + end), numel), e.shape));
  }
  return out;
}

/** Reads the `__metadata__` strings of a safetensors file (empty when it has none). */
export async function safetensorsMetadata(path: string): Promise<Record<string, string>> {
  // Only the header is read: checkpoints are hundreds of megabytes.
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const start = Buffer.alloc(8);
    await fh.read(start, 0, Math.min(8, size), 0);
    const head = Buffer.alloc(8 + headerLength(path, start, size));
    await fh.read(head, 0, head.length, 0);
    return parseHeader(path, head, size).metadata;
  } finally {
    await fh.close();
  }
}

let tmpCounter = 0;

/**
 * Writes tensors to `path` in the safetensors format: F32, except `*num_batches_tracked` as I64.
 * The file is written to a temporary name and renamed, so a reader never sees half a file.
 */
export async function saveSafetensors(path: string, stateDict: StateDict, metadata?: Record<string, string>): Promise<void> {
  const items = stateDict instanceof Map ? [...stateDict] : Object.entries(stateDict);
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new Error(`saveSafetensors: metadata value for '${k}' must be a string`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of items) {
    if (!(t instanceof Tensor)) throw new Error(`saveSafetensors: '${name}' is not a Tensor`);
    const dtype = isInt64Key(name) ? 'I64' : 'F32';
    const size = t.numel * BYTES[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // data starts 8-byte aligned, as the reference writer does
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8, 'utf8');

  const tmp = `${path}.tmp-${process.pid}-${++tmpCounter}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(head);
    for (const [name, t] of items) {
      const values = await t.data();
      let bytes: Buffer;
      if (isInt64Key(name)) {
        const ints = BigInt64Array.from(values, (v) => BigInt(Math.round(v)));
        bytes = Buffer.from(ints.buffer);
        if (bigEndianHost) bytes.swap64();
      } else {
        bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
        if (bigEndianHost) bytes.swap32();
      }
      await fh.write(bytes);
    }
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await rename(tmp, path);
}
