/**
 * The two AOS-CX CLI outputs the driver reads over SSH (SWITCH-CLI-REFERENCE.md §2.1, HPE
 * `show version` and `show images` pages, 10.03; real captures in Cray-HPE docs-csm):
 *
 * - `show version`: `Version      : FL.10.13.1000`, `Build ID : …`, `Active Image : primary`.
 * - `show images`: one block per slot, headed `ArubaOS-CX Primary Image` / `Secondary Image`, with
 *   `Version : …`, `Size : 444 MB`, `Date : …` and `SHA-256 : <64 hex>`, then
 *   `Default Image : primary` and, per management module, `Active Image : primary`.
 *
 * The SHA-256 in `show images` is of the installed slot image: the best on-box evidence of any
 * platform. How an empty slot prints is unconfirmed; a slot block without a Version and a
 * SHA-256 is read as empty.
 */
import { SwitchOutputError } from '../driver.js';
import { capture, checkedDigest } from '../dialect.js';

export type AosCxSlot = 'primary' | 'secondary';

export interface SlotImage {
  /** As the switch prints it, platform prefix included (`FL.10.13.1000`). */
  version: string;
  sha256: string;
}

export interface ShowImages {
  primary: SlotImage | null;
  secondary: SlotImage | null;
  defaultImage: AosCxSlot | null;
  activeImage: AosCxSlot | null;
}

const SLOT_HEADER = /^\s*ArubaOS-CX\s+(Primary|Secondary)\s+Image\s*$/gim;

function slotName(text: string | null): AosCxSlot | null {
  const lower = text?.trim().toLowerCase();
  return lower === 'primary' || lower === 'secondary' ? lower : null;
}

/** `FL.10.13.1000` → `10.13.1000`: the catalog's version of an AOS-CX image carries no platform prefix. */
export function aosCxReleaseVersion(version: string): string {
  return version.replace(/^[A-Z]{2}\./, '');
}

/** The release as numbers (`10.13.1000` → [10, 13, 1000]), for the "10.04 or later" check. */
export function aosCxRelease(version: string): number[] {
  return aosCxReleaseVersion(version).split('.').map((n) => Number(n));
}

/** True for releases whose REST API can pull an image from a URL (10.04 and later; pyaoscx `upload_firmware_http`). */
export function canPullFromUrl(version: string): boolean {
  const [major = 0, minor = 0] = aosCxRelease(version);
  return major > 10 || (major === 10 && minor >= 4);
}

export function parseAosCxShowVersion(output: string): { version: string; activeImage: AosCxSlot | null } {
  const version = capture(output, /^\s*Version\s*:\s*(\S+)\s*$/m);
  if (!version || !/^[A-Z]{2}\.\d+\.\d+\.\d+$/.test(version)) throw new SwitchOutputError('show version: no "Version : XX.10.nn.nnnn" line');
  return { version, activeImage: slotName(capture(output, /^\s*Active Image\s*:\s*(\S+)\s*$/m)) };
}

export function parseAosCxShowImages(output: string): ShowImages {
  const headers = [...output.matchAll(SLOT_HEADER)];
  if (headers.length === 0) throw new SwitchOutputError('show images: no "ArubaOS-CX Primary Image" block');
  const images: ShowImages = { primary: null, secondary: null, defaultImage: null, activeImage: null };
  headers.forEach((header, i) => {
    const slot = slotName(header[1]!)!;
    const end = headers[i + 1]?.index ?? output.search(/^\s*Default Image\s*:/m);
    const block = output.slice(header.index! + header[0].length, end > header.index! ? end : undefined);
    const version = capture(block, /^\s*Version\s*:\s*(\S+)\s*$/m);
    const sha = capture(block, /^\s*SHA-256\s*:\s*(\S+)\s*$/m);
    if (version === null && sha === null) return;
    if (version === null || sha === null) throw new SwitchOutputError(`show images: the ${slot} image has ${version === null ? 'no Version' : 'no SHA-256'} line`);
    images[slot] = { version, sha256: checkedDigest(sha, 'sha256', 'show images') };
  });
  images.defaultImage = slotName(capture(output, /^\s*Default Image\s*:\s*(\S+)\s*$/m));
  images.activeImage = slotName(capture(output, /^\s*Active Image\s*:\s*(\S+)\s*$/m));
  return images;
}
