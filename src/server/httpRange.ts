/**
 * Range requests for the HTTP(S) front end (RFC 9110 §14): one byte range per request, as
 * firmware clients (curl -C -, wget -c, switches resuming a pull) send. A header with several
 * ranges, or one that is not a valid byte range, is ignored and the whole file is sent (200):
 * RFC 9110 §14.2 lets a server ignore Range, and multipart/byteranges has no user here.
 */

/** What a Range header asks of a file of a given size. */
export type RangeRequest =
  | { kind: 'whole' }
  /** Inclusive byte positions, `start <= end < size`. */
  | { kind: 'range'; start: number; end: number }
  /** 416: no byte of the range exists (RFC 9110 §14.1.1, §15.5.17). */
  | { kind: 'unsatisfiable' };

const SINGLE_RANGE = /^bytes=[ \t]*(\d*)-(\d*)[ \t]*$/i;

/**
 * Interprets a `Range` header value for a file of `size` bytes: `bytes=a-b`, `bytes=a-` (from a
 * to the end), `bytes=-n` (the last n bytes). `b` past the end is cut to the end (§14.1.2).
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'whole' };
  const match = SINGLE_RANGE.exec(header);
  if (!match) return { kind: 'whole' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'whole' };
  // Digits beyond 2^53 are not positions of any file here: treat as "very large".
  const firstPos = first === '' ? null : Number(first);
  const lastPos = last === '' ? null : Number(last);
  if (firstPos === null) {
    // Suffix range: the last n bytes; n = 0 selects nothing.
    const n = lastPos!;
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  if (lastPos !== null && lastPos < firstPos) return { kind: 'whole' }; // invalid: ignored (§14.1.1)
  if (firstPos >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start: firstPos, end: Math.min(lastPos ?? size - 1, size - 1) };
}

/**
 * RFC 9110 §13.1.5: a Range is honoured under `If-Range` only when the validator still matches
 * the file: the strong ETag exactly. A weak ETag never matches, nor does a date (see below).
 * Otherwise the whole file is sent.
 */
export function ifRangeMatches(ifRange: string, etag: string): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"')) return value === etag;
  if (value.startsWith('W/')) return false;
  // An HTTP-date is a weak validator here: a file rewritten within the same second keeps its
  // Last-Modified (RFC 9110 §13.1.5 allows a date only when it is known to be strong). A resume
  // that names a date gets the whole file, never bytes of another version spliced on.
  return false;
}
