import { comparableAlgorithms, mismatchedAlgorithms, type Digests, type HashAlgorithm } from './algorithms.js';

/**
 * What the evidence from both ends of a transfer says about the image the switch ended up with.
 *
 * - `verified`: the bytes that arrived are the reference bytes.
 * - `truncated`: fewer bytes arrived than the image has.
 * - `corrupted-in-transit`: the server sent the reference bytes, different bytes arrived.
 * - `wrong-image-served`: the server sent bytes that are not the reference image.
 * - `repository-drift`: the image on the server's disk no longer matches its catalog entry.
 * - `checksum-mismatch`: the bytes that arrived are wrong, and there is no server-side evidence to
 *   say where they went wrong (a pull from a vendor's server, or a resumed transfer).
 * - `unverified`: there was no reference to compare with.
 */
export type Verdict =
  | 'verified'
  | 'truncated'
  | 'corrupted-in-transit'
  | 'wrong-image-served'
  | 'repository-drift'
  | 'checksum-mismatch'
  | 'unverified';

/** The reference: the catalog entry, or the vendor's published digests (size may be unknown). */
export interface ReferenceEvidence {
  digests: Digests;
  size: number | null;
}

/** The server's audit record of what it sent (a subset of the server's TransferRecord). */
export interface ServerEvidence {
  /** SHA-256 of exactly the bytes written to the data connection; null when hashing was off. */
  sha256: string | null;
  bytes: number;
  /** REST offset: a record that starts past byte 0 covers only part of the image. */
  offset: number;
  result: 'complete' | 'aborted';
}

/** What the client (the switch) holds: its digests of the bytes that arrived, and their count. */
export interface ClientEvidence {
  digests: Digests;
  bytes: number;
}

/** The image as it is on the server's disk now (e.g. re-hashed by the serving catalog). */
export interface RepositoryEvidence {
  digests: Digests;
  size: number;
}

export interface EvidenceInput {
  reference: ReferenceEvidence | null;
  client: ClientEvidence;
  server?: ServerEvidence | null;
  repository?: RepositoryEvidence | null;
}

export interface VerdictReport {
  verdict: Verdict;
  /** True only for `verified`. */
  ok: boolean;
  /** One sentence an operator can act on. */
  reason: string;
  /** Algorithms compared between the reference and the client. */
  algorithms: HashAlgorithm[];
  /** Whether the server record covered the whole image and so took part in the comparison. */
  serverEvidenceUsed: boolean;
  /** Disagreements that did not decide the verdict (e.g. drift found after a verified pull). */
  notes: string[];
}

/** A server record says something about the whole image only if it sent all of it, from byte 0, hashed. */
function isWholeImage(server: ServerEvidence | null | undefined): server is ServerEvidence & { sha256: string } {
  return !!server && server.sha256 !== null && server.offset === 0 && server.result === 'complete';
}

function differs(reference: ReferenceEvidence, digests: Digests, size: number): boolean {
  if (reference.size !== null && size !== reference.size) return true;
  return mismatchedAlgorithms(reference.digests, digests).length > 0;
}

/**
 * Compares the evidence and names the failure. Pure: no I/O, no clock.
 *
 * Decision order, so that each verdict names the first place the bytes went wrong:
 * 1. no reference (or no algorithm in common with the client) → `unverified`;
 * 2. the client holds the reference bytes → `verified` (other disagreements become notes);
 * 3. the image on disk differs from the reference → `repository-drift`;
 * 4. the server sent a whole image whose SHA-256 is not the reference's → `wrong-image-served`;
 * 5. fewer bytes arrived than the image has → `truncated`;
 * 6. the server sent the reference bytes → `corrupted-in-transit`;
 * 7. otherwise → `checksum-mismatch` (no server evidence to place the fault).
 */
export function judgeEvidence(input: EvidenceInput): VerdictReport {
  const { reference, client, server, repository } = input;
  const notes: string[] = [];
  const serverWhole = isWholeImage(server) && reference?.digests.sha256 !== undefined;
  const algorithms = reference ? comparableAlgorithms(reference.digests, client.digests) : [];
  const report = (verdict: Verdict, reason: string): VerdictReport => ({
    verdict,
    ok: verdict === 'verified',
    reason,
    algorithms,
    serverEvidenceUsed: serverWhole,
    notes,
  });

  if (!reference || algorithms.length === 0) {
    return report('unverified', 'no reference digest to compare with: nothing was verified');
  }
  const expectedSize = reference.size ?? (serverWhole ? server!.bytes : null);

  const clientMismatch = mismatchedAlgorithms(reference.digests, client.digests);
  const clientSizeOk = expectedSize === null || client.bytes === expectedSize;
  if (clientMismatch.length === 0 && clientSizeOk) {
    if (repository && differs(reference, repository.digests, repository.size)) {
      notes.push('the image on the server disk no longer matches the catalog (repository drift), but this copy is good');
    }
    if (serverWhole && server!.sha256 !== client.digests.sha256) {
      notes.push('the server record does not match what arrived: it may belong to another transfer');
    }
    return report('verified', `${algorithms.join(', ')} ${algorithms.length === 1 ? 'matches' : 'match'} the reference (${client.bytes} bytes)`);
  }

  if (repository && differs(reference, repository.digests, repository.size)) {
    return report('repository-drift', 'the image on the server disk no longer matches its catalog entry; the server served what it has');
  }
  if (serverWhole && server!.sha256 !== reference.digests.sha256) {
    return report('wrong-image-served', 'the server sent bytes whose SHA-256 is not the catalog image');
  }
  if (expectedSize !== null && client.bytes < expectedSize) {
    return report('truncated', `${client.bytes} of ${expectedSize} bytes arrived`);
  }
  if (serverWhole) {
    return report('corrupted-in-transit', 'the server sent the catalog image but different bytes arrived');
  }
  const what = clientMismatch.length > 0 ? `${clientMismatch.join(', ')} differ` : `${client.bytes} bytes arrived, expected ${expectedSize}`;
  return report('checksum-mismatch', `${what}; no server record of the whole transfer to say where the bytes changed`);
}
