/** Parameter-free element-wise layers. */
import type { Tensor } from '../../tensor/tensor.js';
import { relu, sigmoid, silu } from '../../tensor/ops/index.js';
import { Module } from '../module.js';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** x·sigmoid(x), also known as Swish. */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** Returns its input unchanged (a placeholder, e.g. for a removed head). */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}
