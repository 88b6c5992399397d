/**
 * What an op is: one object holding everything about it — its shape rule, its ONNX emission and
 * (with autodiff) its gradient rule. Op families live in `ops/<family>.ts`.
 */
import type { Shape, Tensor } from './shape.js';
import type { Value } from './builder.js';
import type { onnx } from 'onnx-proto';

/** ONNX attribute values an emitter may write. */
export type AttrValue = number | string | readonly number[] | { float: number } | { floats: readonly number[] };

/**
 * 'auto' lets emission pick a faster equivalent ONNX formulation where one is known
 * (see ops/conv-lowering.ts); 'direct' always writes the plain ONNX operator.
 */
export type Lowering = 'auto' | 'direct';

/** What `emit` can do: write ONNX nodes and the initializers they need. */
export interface Emitter {
  /** The export-wide lowering policy: 'direct' overrides every op's 'auto' (OnnxExportOptions.lowering). */
  readonly lowering: Lowering;
  /** Appends an ONNX node; returns its output names. */
  node(opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: Record<string, AttrValue>): void;
  /** A fresh intermediate name derived from `hint`. */
  temp(hint: string): string;
  /** Adds an int64 initializer (e.g. Pad's pads, Slice's starts), 1-D unless `dims` says otherwise; returns its name. */
  int64s(values: readonly number[], hint: string, dims?: readonly number[]): string;
  /** Adds a float32 initializer and returns its name. */
  floats(tensor: Tensor, hint: string): string;
  /** The emitted ONNX nodes so far (read-only view for tests). */
  readonly nodes: readonly onnx.INodeProto[];
}

/** One application of an op, as the emitter sees it. */
export interface EmitArgs<A> {
  readonly inputs: readonly string[];
  readonly output: string;
  readonly attrs: A;
  readonly inputShapes: readonly Shape[];
  readonly outputShape: Shape;
}

/** What a gradient rule sees: the forward application and the gradient of its output. */
export interface GradArgs<A> {
  readonly inputs: readonly Value[];
  readonly output: Value;
  readonly attrs: A;
  /** d(loss)/d(output), shaped like the output. */
  readonly dy: Value;
  /** Which inputs need a gradient; a rule may skip the others (return null for them). */
  readonly needs: readonly boolean[];
}

/**
 * A gradient rule: builds graph nodes computing d(loss)/d(input) for each input, or null where
 * there is none (integer-like inputs) or it is not needed. A gradient may be shaped like a
 * broadcast of its input; autodiff reduces it back.
 */
export type GradRule<A> = (args: GradArgs<A>) => readonly (Value | null)[];

/** A primitive operation of the graph builder. */
export interface OpDef<A = Record<string, never>> {
  /** pastiche's name for the op, used in error messages and node names. */
  readonly type: string;
  /** Output shape from input shapes; throws a RangeError naming the op when they do not fit. */
  inferShape(inputs: readonly Shape[], attrs: A): Shape;
  /** Writes the ONNX node(s) computing the op. */
  emit(e: Emitter, args: EmitArgs<A>): void;
  /** The gradient rule; absent means autodiff fails with "no gradient rule for <type>". */
  readonly grad?: GradRule<A>;
}

/** Throws a RangeError that names the op, for use in shape rules. */
export function shapeError(op: string, message: string): never {
  throw new RangeError(`${op}: ${message}`);
}

/** Checks the number of inputs of an op application. */
export function expectArity(op: string, inputs: readonly Shape[], min: number, max = min): void {
  if (inputs.length < min || inputs.length > max) {
    shapeError(op, `expected ${min === max ? min : `${min} to ${max}`} inputs but received ${inputs.length}`);
  }
}
