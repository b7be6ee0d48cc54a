/**
 * Faults an emulated switch can have, set per switch with `N:kind[=value]` items (comma-separated,
 * N the 1-based switch number). Each reproduces a behaviour real switches or networks show
 * (SWITCH-CLI-REFERENCE.md); the drivers must cope with every one of them.
 */
export interface SwitchFaults {
  /** `slow=BPS`: the switch reads its data connection no faster than this (bytes per second). */
  slowBytesPerSecond?: number;
  /** `cut=BYTES`: the link drops after this many bytes of the image. */
  cutAfterBytes?: number;
  /** `corrupt=OFFSET`: the byte at this offset is flipped on flash after the copy. */
  corruptAt?: number;
  /** `flash=BYTES`: flash capacity (overrides the fleet's). */
  flashBytes?: number;
  /** `badpass`: the switch's SSH password is not the one in the inventory. */
  wrongPassword?: boolean;
  /** `hang`: the SSH port accepts TCP and never answers. */
  sshHangs?: boolean;
  /** `version=V`: the version the switch reports (overrides the fleet's). */
  version?: string;
  /** `stall=SECONDS`: after the first 64 KiB of the image the switch stops reading its data connection this long, as a switch writing flash does. */
  stallSeconds?: number;
  /** `nosha512`: the platform's SHA-512 command is refused (`% Invalid input`), as on classic IOS. */
  noSha512?: boolean;
  /** `wrap`: digests are printed wrapped over two lines (as in a Cisco-published capture). */
  wrapDigests?: boolean;
  /** `hashrate=BPS`: on-box hashing reads flash at this rate, printing its progress dots as it goes. */
  hashBytesPerSecond?: number;
  /** `erase`: class-B flash: `copy` first asks `Erase flash: before copying? [confirm]` (Cisco). */
  eraseQuestion?: boolean;
  /** `kbdint`: the SSH server offers keyboard-interactive only (AAA/TACACS switches). */
  keyboardInteractiveOnly?: boolean;
  /** `legacyssh`: the SSH server offers only what IOS 15 offers: diffie-hellman-group14-sha1, ssh-rsa, aes128-cbc, hmac-sha1. */
  legacySsh?: boolean;
  /** `oldssh`: the SSH server offers diffie-hellman-group1-sha1 only (very old images). */
  oldSsh?: boolean;
  /** `userexec`: the account lands unprivileged (`sw>`); `enable` asks for a password (the login password). */
  userExec?: boolean;
  /** `banner`: a login banner with lines that look like prompts (`####`, `<<< … >>>`) comes before the prompt. */
  banner?: boolean;
  /** `ftpsource=ADDR`: the switch's FTP connections come from this address, not its SSH address (Cisco `ip ftp source-interface`). */
  ftpSource?: string;
  /** `dlfail`: a background download (Dell OS10, AOS-CX) ends `Failed: …` after it started. */
  downloadFails?: boolean;
  /** `put400`: AOS-CX's `PUT /firmware` answers 400 "Firmware upgrade in progress" and downloads anyway (the answer pyaoscx tolerates). */
  put400?: boolean;
  /** `statusfail=N`: after a download starts, AOS-CX's next N reads of `firmware/status` answer HTTP 500 (a busy switch's REST server). */
  statusFailures?: number;
}

export const FAULT_KINDS = [
  'slow',
  'cut',
  'corrupt',
  'flash',
  'badpass',
  'hang',
  'version',
  'stall',
  'nosha512',
  'wrap',
  'hashrate',
  'erase',
  'kbdint',
  'legacyssh',
  'oldssh',
  'userexec',
  'banner',
  'ftpsource',
  'dlfail',
  'put400',
  'statusfail',
] as const;

/** `3:slow=65536,5:cut=300000,7:stall=12,9:erase,11:kbdint,2:version=17.09.04a` → faults per switch number. */
export function parseFaults(spec: string | undefined, count: number): Map<number, SwitchFaults> {
  const faults = new Map<number, SwitchFaults>();
  if (!spec) return faults;
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const match = item.match(/^(\d+):([a-z0-9]+)(?:=(.+))?$/);
    if (!match) throw new Error(`fault "${item}": expected N:kind[=value] (kinds: ${FAULT_KINDS.join(', ')})`);
    const index = Number(match[1]);
    const kind = match[2]!;
    const value = match[3];
    if (index < 1 || index > count) throw new Error(`fault "${item}": switch ${index} is not in 1-${count}`);
    const f = faults.get(index) ?? {};
    const num = (min = 0) => {
      const n = Number(value);
      if (value === undefined || !Number.isSafeInteger(n) || n < min) throw new Error(`fault "${item}": needs a whole number${min > 0 ? ` of at least ${min}` : ''}`);
      return n;
    };
    const flag = () => {
      if (value !== undefined) throw new Error(`fault "${item}": takes no value`);
      return true;
    };
    switch (kind) {
      case 'slow': f.slowBytesPerSecond = num(1); break;
      case 'cut': f.cutAfterBytes = num(); break;
      case 'corrupt': f.corruptAt = num(); break;
      case 'flash': f.flashBytes = num(); break;
      case 'badpass': f.wrongPassword = flag(); break;
      case 'hang': f.sshHangs = flag(); break;
      case 'version':
        if (!value) throw new Error(`fault "${item}": needs a version`);
        f.version = value;
        break;
      case 'stall': f.stallSeconds = num(1); break;
      case 'nosha512': f.noSha512 = flag(); break;
      case 'wrap': f.wrapDigests = flag(); break;
      case 'hashrate': f.hashBytesPerSecond = num(1); break;
      case 'erase': f.eraseQuestion = flag(); break;
      case 'kbdint': f.keyboardInteractiveOnly = flag(); break;
      case 'legacyssh': f.legacySsh = flag(); break;
      case 'oldssh': f.oldSsh = flag(); break;
      case 'userexec': f.userExec = flag(); break;
      case 'banner': f.banner = flag(); break;
      case 'ftpsource':
        if (!value || !/^127\.\d+\.\d+\.\d+$/.test(value)) throw new Error(`fault "${item}": needs a loopback address 127.x.y.z`);
        f.ftpSource = value;
        break;
      case 'dlfail': f.downloadFails = flag(); break;
      case 'put400': f.put400 = flag(); break;
      case 'statusfail': f.statusFailures = num(1); break;
      default:
        throw new Error(`fault "${item}": unknown kind (kinds: ${FAULT_KINDS.join(', ')})`);
    }
    faults.set(index, f);
  }
  return faults;
}
