import { InvalidArgumentError } from './program.js';

/** Commander parser for numeric flags: checks the form here, the range in the config schema. */
export function numberArgument(value: string): string {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new InvalidArgumentError('must be a number');
  return value;
}

/** Commander parser for a whole number in [min, max] (flags no config schema checks). */
export function wholeNumberArgument(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`must be a whole number in ${min}-${max}`);
    return n;
  };
}
