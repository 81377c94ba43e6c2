import { arr, type Arr } from './array.js';

function sizes(x: Arr, weight: Arr, what: string): { rows: number; inF: number; outF: number } {
  if (weight.shape.length !== 2) throw new Error(`${what}: weight must be [out, in], got [${weight.shape.join(', ')}]`);
  const [outF, inF] = weight.shape;
  if (x.shape.length < 1 || x.shape[x.shape.length - 1] !== inF) {
    throw new Error(`${what}: input [${x.shape.join(', ')}] must end in ${inF} features for weight [${outF}, ${inF}]`);
  }
  return { rows: x.data.length / inF, inF, outF };
}

/** `F.linear`: y = x · Wᵀ + b for x [..., in], W [out, in], b [out]; returns [..., out]. */
export function linear(x: Arr, weight: Arr, bias?: Arr): Arr {
  const { rows, inF, outF } = sizes(x, weight, 'linear');
  if (bias !== undefined && (bias.shape.length !== 1 || bias.shape[0] !== outF)) {
    throw new Error(`linear: bias must be [${outF}], got [${bias.shape.join(', ')}]`);
  }
  const out = arr([...x.shape.slice(0, -1), outF]);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = bias === undefined ? 0 : bias.data[o];
      for (let i = 0; i < inF; i++) s += x.data[r * inF + i] * weight.data[o * inF + i];
      out.data[r * outF + o] = s;
    }
  }
  return out;
}

/** Gradients of linear given dOut [..., out]. */
export interface LinearGrads {
  /** dOut · W, shaped like x. */
  dInput: Arr;
  /** Σ over rows of dOutᵀ · x, [out, in]. */
  dWeight: Arr;
  /** Σ over rows of dOut, [out]. */
  dBias: Arr;
}

/** Backward of linear. */
export function linearBackward(x: Arr, weight: Arr, dOut: Arr): LinearGrads {
  const { rows, inF, outF } = sizes(x, weight, 'linearBackward');
  const want = [...x.shape.slice(0, -1), outF];
  if (dOut.shape.join() !== want.join()) throw new Error(`linearBackward: dOut must be [${want.join(', ')}], got [${dOut.shape.join(', ')}]`);
  const dInput = arr(x.shape);
  const dWeight = arr(weight.shape);
  const dBias = arr([outF]);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      const g = dOut.data[r * outF + o];
      dBias.data[o] += g;
      for (let i = 0; i < inF; i++) {
        dInput.data[r * inF + i] += g * weight.data[o * inF + i];
        dWeight.data[o * inF + i] += g * x.data[r * inF + i];
      }
    }
  }
  return { dInput, dWeight, dBias };
}
