/**
 * The graph builder: named inputs, parameters and constants, and op applications recorded in
 * order. Networks are written once against it; `toOnnx` turns the result into an inference model.
 */
import type { OpDef } from './op.js';
import { formatShape, isConcrete, sizeOf, type Shape, type Tensor } from './shape.js';

export type ValueKind = 'input' | 'param' | 'constant' | 'node';

/** A node application: one op, its input values and attributes, one output value. */
export interface Node {
  readonly op: OpDef<any>;
  readonly inputs: readonly Value[];
  readonly attrs: unknown;
  readonly output: Value;
}

/** A symbolic tensor in a graph. */
export class Value {
  /** Set for values produced by an op. */
  node?: Node;
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly name: string,
    readonly shape: Shape,
    readonly kind: ValueKind,
    /** Data of params and constants. */
    readonly tensor?: Tensor,
  ) {}

  get rank(): number {
    return this.shape.length;
  }
}

export class Graph {
  readonly inputs: Value[] = [];
  readonly params: Value[] = [];
  readonly constants: Value[] = [];
  readonly nodes: Node[] = [];
  readonly outputs: { name: string; value: Value }[] = [];
  private nextId = 0;
  private readonly names = new Set<string>();

  private unique(name: string): string {
    let candidate = name;
    for (let i = 1; this.names.has(candidate); i++) candidate = `${name}_${i}`;
    this.names.add(candidate);
    return candidate;
  }

  private claim(name: string, what: string): string {
    if (this.names.has(name)) throw new Error(`Graph already has a value named '${name}' (adding ${what})`);
    this.names.add(name);
    return name;
  }

  /** A named graph input; dimensions may be symbols such as 'H' and 'W'. */
  input(name: string, shape: Shape): Value {
    const value = new Value(this, this.nextId++, this.claim(name, 'an input'), shape, 'input');
    this.inputs.push(value);
    return value;
  }

  /** A named trainable parameter, exported as an initializer. */
  param(name: string, tensor: Tensor): Value {
    checkTensor(name, tensor);
    const value = new Value(this, this.nextId++, this.claim(name, 'a parameter'), tensor.shape, 'param', tensor);
    this.params.push(value);
    return value;
  }

  /** A constant tensor, exported as an initializer. */
  constant(tensor: Tensor, name = 'const'): Value {
    checkTensor(name, tensor);
    const value = new Value(this, this.nextId++, this.unique(name), tensor.shape, 'constant', tensor);
    this.constants.push(value);
    return value;
  }

  /** A scalar constant that broadcasts against anything. */
  scalar(x: number, name = 'scalar'): Value {
    return this.constant({ data: Float32Array.of(x), shape: [] }, name);
  }

  /** Applies `op` to `inputs`; the output's shape comes from the op's shape rule. */
  apply<A>(op: OpDef<A>, inputs: readonly Value[], attrs: A, name?: string): Value {
    for (const input of inputs) {
      if (input.graph !== this) throw new Error(`${op.type}: input '${input.name}' belongs to another graph`);
    }
    const shape = op.inferShape(inputs.map((v) => v.shape), attrs);
    const output = new Value(this, this.nextId++, this.unique(name ?? op.type), shape, 'node');
    const node: Node = { op, inputs, attrs, output };
    output.node = node;
    this.nodes.push(node);
    return output;
  }

  /** Marks `value` as a graph output called `name` (a name no other value or output has). */
  output(value: Value, name: string): void {
    if (value.graph !== this) throw new Error(`output '${name}' belongs to another graph`);
    if (this.outputs.some((o) => o.name === name)) throw new Error(`Graph already has an output named '${name}'`);
    if (name !== value.name) this.claim(name, 'an output');
    this.outputs.push({ name, value });
  }

  /** The parameter called `name`. */
  getParam(name: string): Value {
    const found = this.params.find((p) => p.name === name);
    if (!found) throw new Error(`Graph has no parameter named '${name}'`);
    return found;
  }
}

function checkTensor(name: string, tensor: Tensor): void {
  if (!isConcrete(tensor.shape)) throw new RangeError(`${name}: a tensor needs a concrete shape`);
  const expected = sizeOf(tensor.shape);
  if (tensor.data.length !== expected) {
    throw new RangeError(`${name}: shape ${formatShape(tensor.shape)} needs ${expected} values but the data has ${tensor.data.length}`);
  }
}
