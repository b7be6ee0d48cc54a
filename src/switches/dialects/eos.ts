import { SwitchOutputError, ftpCredentialsAuthority, redactSecrets, type PullOutcome, type SwitchHashAlgorithm } from '../driver.js';
import { HASH_UNSUPPORTED, capture, lastLine, namedDigest, type Dialect } from '../dialect.js';
import { CISCO_STYLE_PROMPT } from '../cliSession.js';
import { CISCO_INVALID_INPUT, parseCiscoDirFree } from './cisco.js';

/**
 * Arista EOS (SWITCH-CLI-REFERENCE.md §2.4): `show version` (model on the first line,
 * `Software image version:`), `dir flash:`, `copy ftp://user:pass@host/path flash:NAME` (the
 * URI form of ARISTA-CONFIG-COPY-MIB), and `verify /sha512 flash:NAME` (or /md5). A VRF comes
 * from the CLI context (`cli vrf NAME` before the copy, `cli vrf default` after). The image is
 * hashed right after the copy: an installed image may be "optimized" and hash differently.
 */
export function parseEosShowVersion(output: string): { model: string; version: string } {
  const version = capture(output, /Software image version:\s*(\S+)/i);
  const model = capture(output, /^\s*Arista\s+(\S+)/m);
  if (!version) throw new SwitchOutputError('show version: no "Software image version:" line');
  if (!model) throw new SwitchOutputError('show version: no "Arista <model>" line');
  return { model, version };
}

/**
 * `Copy completed successfully.`; an error is a `% Error …` (or `% <refusal>`) line. A curl-style
 * progress meter (`  % Total    % Received …`) is not one.
 */
export function parseEosCopy(output: string): PullOutcome {
  const error = output.match(/^\s*%\s*(?:Error|Invalid|Incomplete|Permission|Access|Unable|Cannot)\b.*$/im) ?? output.match(/^(?!\s*%\s*Total).*\b(?:Error|error|failed|Failed)\b.*$/m);
  if (/Copy completed successfully/i.test(output) && !error) return { ok: true, message: 'Copy completed successfully.', bytes: null };
  return { ok: false, message: redactSecrets(error?.[0].trim() ?? (lastLine(output) || 'copy ended without "Copy completed successfully"')), bytes: null };
}

export function parseEosVerify(output: string, algorithm: SwitchHashAlgorithm, fileName: string): string | null | typeof HASH_UNSUPPORTED {
  if (CISCO_INVALID_INPUT.test(output)) return HASH_UNSUPPORTED;
  const line = new RegExp(`verify /${algorithm}\\s*\\((?<name>[^)]*)\\)\\s*=\\s*(?<hex>[0-9a-fA-F]+)`, 'i');
  const digest = namedDigest(output, line, fileName, algorithm, `verify /${algorithm}`, /%\s*Error/i);
  if (digest !== null) return digest;
  if (/No such file|not found|Error opening|does not exist/i.test(output)) return null;
  throw new SwitchOutputError(`verify /${algorithm}: no "= <digest>" line`);
}

export const aristaEos: Dialect = {
  name: 'arista-eos',
  protocols: ['ftp', 'tftp', 'scp', 'sftp', 'http', 'https'],
  prompt: CISCO_STYLE_PROMPT,
  privilege: { unprivilegedEnd: '>', command: 'enable' },
  setupCommands: ['terminal length 0', 'terminal width 32767'],
  inventoryCommands: ['show version', 'dir flash:'],
  parseInventory: (outputs) => ({ ...parseEosShowVersion(outputs[0] ?? ''), freeBytes: parseCiscoDirFree(outputs[1] ?? '') }),
  defaultVrf: null,
  pullCommand(url, fileName, vrf) {
    const authority = ftpCredentialsAuthority(url);
    return {
      command: `copy ftp://${authority}${url.path} flash:${fileName}`,
      questions: [{ match: /password:\s*$/i, answer: url.password, secret: true }],
      ...(vrf ? { before: [`cli vrf ${vrf}`], after: ['cli vrf default'] } : {}),
    };
  },
  parsePullOutput: parseEosCopy,
  hashAlgorithms: ['sha512', 'md5'],
  hashCommand: (fileName, algorithm) => `verify /${algorithm} flash:${fileName}`,
  parseHash: parseEosVerify,
  hashBytesPerSecond: 8_000_000,
};
