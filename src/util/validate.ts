/**
 * Validation at the boundary: one place that words the messages users see.
 * `TypeError` for wrong types, `RangeError` for out-of-range values.
 */

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** Throws unless `value` is a finite number in [min, max]. */
export function expectNumber(name: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`Expected a number for ${name} but received ${describe(value)}`);
  }
  if (!(value >= min && value <= max)) {
    const range = Number.isFinite(min) && Number.isFinite(max) ? `between ${min} and ${max}`
      : Number.isFinite(min) ? `of at least ${min}` : `of at most ${max}`;
    throw new RangeError(`Expected a number ${range} for ${name} but received ${describe(value)}`);
  }
  return value;
}

/** Throws unless `value` is an integer in [min, max]. */
export function expectInteger(name: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`Expected an integer for ${name} but received ${describe(value)}`);
  }
  return expectNumber(name, value, min, max);
}

/** Throws unless `value` is one of `choices`. */
export function expectOneOf<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new RangeError(`Expected one of ${choices.map((c) => `'${c}'`).join(', ')} for ${name} but received ${describe(value)}`);
  }
  return value as T;
}

/** Parses a CLI string as a number and validates it; errors read as if the user passed a number. */
export function parseNumber(name: string, text: string, min?: number, max?: number): number {
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (Number.isNaN(value)) throw new TypeError(`Expected a number for ${name} but received '${text}'`);
  return expectNumber(name, value, min, max);
}

/** Parses a CLI string as an integer and validates it. */
export function parseInteger(name: string, text: string, min?: number, max?: number): number {
  const value = /^[-+]?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (Number.isNaN(value)) throw new TypeError(`Expected an integer for ${name} but received '${text}'`);
  return expectInteger(name, value, min, max);
}
