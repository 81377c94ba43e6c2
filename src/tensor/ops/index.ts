/** Every tensor op, wired into the Tensor methods and the autograd engine. */
import * as creation from './creation.js';
import * as elementwise from './elementwise.js';
import * as matmulOps from './matmul.js';
import * as reduce from './reduce.js';
import * as shape from './shape.js';
import { setOps } from '../tensor.js';
import { setGradHelpers } from '../autograd.js';

export * from './creation.js';
export * from './elementwise.js';
export * from './matmul.js';
export * from './reduce.js';
export * from './shape.js';

setOps({ ...creation, ...elementwise, ...matmulOps, ...reduce, ...shape });
setGradHelpers(reduce.sumToShape, (into, g) => elementwise.mapInPlace('accumulate_grad', into, (t, a) => `${t} + ${a}`, [g]));
