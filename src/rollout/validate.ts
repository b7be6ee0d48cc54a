import type { ConfigProblem } from '../core/errors.js';

/** Small validation helpers: every problem is collected with its path (vsftpd/changesets style). */
export class Problems {
  readonly list: ConfigProblem[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
  isObject(value: unknown, path: string): value is Record<string, unknown> {
    const ok = typeof value === 'object' && value !== null && !Array.isArray(value);
    if (!ok) this.add(path, 'must be a mapping');
    return ok;
  }
  keys(value: Record<string, unknown>, path: string, known: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) this.add(path ? `${path}.${key}` : key, `unknown key (known: ${known.join(', ')})`);
    }
  }
  string(value: unknown, path: string, optional = false): string | undefined {
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'string' || value.length === 0) {
      this.add(path, 'must be a non-empty string');
      return undefined;
    }
    return value;
  }
  int(value: unknown, path: string, min: number, max: number, optional = false): number | undefined {
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.add(path, `must be a whole number in ${min}-${max}`);
      return undefined;
    }
    return value;
  }
}
