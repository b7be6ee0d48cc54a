import { Limits } from './limits.js';

/** An inclusive TCP port range. */
export interface PortRange {
  readonly min: number;
  readonly max: number;
}

/**
 * Parses `MIN-MAX` (or a single port). Returns the range, or an error message that says what is wrong.
 * Passive ports must be unprivileged (1024-65535) and the range must not be reversed.
 */
export function parsePortRange(text: string): PortRange | string {
  const match = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(text);
  if (!match) return `"${text}" is not a port range; expected MIN-MAX, e.g. 63006-63010`;
  const min = Number(match[1]);
  const max = match[2] === undefined ? min : Number(match[2]);
  if (min > max) return `range ${min}-${max} is reversed; the lower port comes first`;
  if (min < Limits.MIN_UNPRIVILEGED_PORT || max > Limits.MAX_PORT) {
    return `range ${min}-${max} is outside ${Limits.MIN_UNPRIVILEGED_PORT}-${Limits.MAX_PORT}`;
  }
  return { min, max };
}

export function portRangeSize(range: PortRange): number {
  return range.max - range.min + 1;
}

export function isPortInRange(port: number, range: PortRange): boolean {
  return port >= range.min && port <= range.max;
}

export function formatPortRange(range: PortRange): string {
  return range.min === range.max ? String(range.min) : `${range.min}-${range.max}`;
}
