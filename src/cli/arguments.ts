import { InvalidArgumentError } from './program.js';

/** Commander parser for numeric flags: checks the form here, the range in the config schema. */
export function numberArgument(value: string): string {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new InvalidArgumentError('must be a number');
  return value;
}
