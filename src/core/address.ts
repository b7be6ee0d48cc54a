import { isIP } from 'node:net';

/** Strips the IPv4-mapped IPv6 prefix so `::ffff:10.0.0.1` and `10.0.0.1` compare equal. */
export function canonicalAddress(address: string | undefined): string {
  if (!address) return '';
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  return lower;
}

export function sameAddress(a: string | undefined, b: string | undefined): boolean {
  const left = canonicalAddress(a);
  return left !== '' && left === canonicalAddress(b);
}

/** Parses an address into bytes (4 for IPv4, 16 for IPv6), or null. */
function addressBytes(address: string): number[] | null {
  const canonical = canonicalAddress(address);
  const family = isIP(canonical);
  if (family === 4) return canonical.split('.').map(Number);
  if (family !== 6) return null;
  const [head, tail] = canonical.includes('::') ? canonical.split('::') : [canonical, undefined];
  const parseGroups = (part: string | undefined): number[] => {
    if (!part) return [];
    const groups: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const v4 = group.split('.').map(Number);
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else groups.push(parseInt(group, 16));
    }
    return groups;
  };
  const headGroups = parseGroups(head);
  const tailGroups = parseGroups(tail);
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...new Array<number>(missing).fill(0), ...tailGroups];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** A parsed CIDR block such as `10.20.0.0/16` or `fd00::/8`. */
export interface Cidr {
  readonly text: string;
  readonly bytes: number[];
  readonly prefixLength: number;
}

/** Parses a CIDR (a bare address means a single host). Returns an error message on failure. */
export function parseCidr(text: string): Cidr | string {
  const [address, prefixText] = text.split('/');
  const bytes = address ? addressBytes(address) : null;
  if (!bytes) return `"${text}" is not an IPv4 or IPv6 address or CIDR block`;
  const maxPrefix = bytes.length * 8;
  const prefixLength = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(maxPrefix)) || prefixLength > maxPrefix) {
    return `"${text}" has an invalid prefix length (0-${maxPrefix})`;
  }
  return { text, bytes, prefixLength };
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  const bytes = addressBytes(address);
  if (!bytes || bytes.length !== cidr.bytes.length) return false;
  let remaining = cidr.prefixLength;
  for (let i = 0; i < bytes.length && remaining > 0; i++, remaining -= 8) {
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff;
    if ((bytes[i]! & mask) !== (cidr.bytes[i]! & mask)) return false;
  }
  return true;
}
