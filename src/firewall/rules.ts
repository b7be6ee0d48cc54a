/**
 * Ready-to-apply firewall rules for the control port, the passive range and the HTTP(S) ports when served (`swfw firewall rules`),
 * and the exact rule arguments `serve --open-firewall` inserts. Pure functions: unit-tested, and
 * applied to real iptables and nft in test/netns/firewallRules.test.ts.
 */
import { isIP } from 'node:net';
import { parseCidr } from '../core/address.js';
import type { PortRange } from '../core/portRange.js';
import { HELPER_FTPS_NOTE } from './classify.js';

export const RULE_FORMATS = ['iptables', 'iptables-restore', 'nftables', 'firewalld', 'ufw', 'windows'] as const;
export type RuleFormat = (typeof RULE_FORMATS)[number];

/** What to open: inbound TCP to the control port and the passive range (and the HTTP(S) ports when served), optionally from one block. */
export interface RuleSpec {
  controlPort: number;
  pasvRange: PortRange;
  /** `serve --http`/`--https` ports (63001/63002 in the HP layout), opened with the same source and destination; [] when not served. */
  webPorts: number[];
  /** A CIDR block (the switch subnet), or null for any source. */
  source: string | null;
  /** The server's bind address when it is a specific one, or null (0.0.0.0 / ::). */
  destination: string | null;
  family: 4 | 6;
}

/** The comment every rule carries, so `--open-firewall` can find and remove exactly its own. */
export function ruleTag(controlPort: number): string {
  return `swfw:${controlPort}`;
}

/**
 * Builds a RuleSpec from the server's bind address and control/passive ports. Returns an error
 * message when `source` is not a CIDR block or its family does not match the bind address.
 */
export function ruleSpec(options: { host: string; controlPort: number; pasvRange: PortRange; webPorts?: number[]; source?: string | null }): RuleSpec | string {
  const destination = options.host === '0.0.0.0' || options.host === '::' ? null : options.host;
  let source: string | null = null;
  let family: 4 | 6 = isIP(options.host) === 6 && destination !== null ? 6 : 4;
  if (options.source) {
    const cidr = parseCidr(options.source);
    if (typeof cidr === 'string') return `--source: ${cidr}`;
    const sourceFamily = cidr.bytes.length === 4 ? 4 : 6;
    if (destination !== null && isIP(destination) !== sourceFamily) {
      return `--source ${options.source} is IPv${sourceFamily} but the server binds ${options.host}`;
    }
    if (destination === null && options.host === '0.0.0.0' && sourceFamily === 6) {
      return `--source ${options.source} is IPv6 but the server binds 0.0.0.0 (IPv4 only)`;
    }
    family = sourceFamily;
    source = options.source;
  }
  return { controlPort: options.controlPort, pasvRange: options.pasvRange, webPorts: options.webPorts ?? [], source, destination, family };
}

const range = (r: PortRange, separator: string) => (r.min === r.max ? String(r.min) : `${r.min}${separator}${r.max}`);

/** Every port to open, in order: the control port, the passive range, then each HTTP(S) port. */
function openedPorts(spec: RuleSpec, separator: string): { what: 'control' | 'passive' | 'web'; port: string }[] {
  return [
    { what: 'control', port: String(spec.controlPort) },
    { what: 'passive', port: range(spec.pasvRange, separator) },
    ...spec.webPorts.map((port) => ({ what: 'web' as const, port: String(port) })),
  ];
}

/**
 * iptables/ip6tables arguments after `-I INPUT` / `-D INPUT`: one rule for the control port, one
 * for the passive range and one per HTTP(S) port, all tagged with the comment `swfw:<port>`.
 */
export function iptablesRules(spec: RuleSpec): string[][] {
  const match = (dport: string) => [
    '-p', 'tcp',
    ...(spec.source ? ['-s', spec.source] : []),
    ...(spec.destination ? ['-d', spec.destination] : []),
    '--dport', dport,
    '-m', 'comment', '--comment', ruleTag(spec.controlPort),
    '-j', 'ACCEPT',
  ];
  return openedPorts(spec, ':').map(({ port }) => match(port));
}

/** The nft rule statement (one rule, a port set) for an input chain of family ip, ip6 or inet. */
export function nftRule(spec: RuleSpec): string {
  const ip = spec.family === 6 ? 'ip6' : 'ip';
  return [
    ...(spec.source ? [`${ip} saddr ${spec.source}`] : []),
    ...(spec.destination ? [`${ip} daddr ${spec.destination}`] : []),
    `tcp dport { ${openedPorts(spec, '-').map(({ port }) => port).join(', ')} }`,
    'accept',
    `comment "${ruleTag(spec.controlPort)}"`,
  ].join(' ');
}

function header(spec: RuleSpec, comment: string): string[] {
  const from = spec.source ? ` from ${spec.source}` : ' from anywhere';
  const to = spec.destination ? ` to ${spec.destination}` : '';
  const wrap = (text: string) => {
    const words = text.split(' ');
    const lines: string[] = [];
    let line = '';
    for (const word of words) {
      if (line && line.length + word.length + 1 > 96) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    if (line) lines.push(line);
    return lines.map((l) => `${comment} ${l}`);
  };
  return [
    `${comment} swfw: allow inbound TCP ${spec.controlPort} (FTP control) and ${range(spec.pasvRange, '-')} (passive data)${spec.webPorts.length ? ` and ${spec.webPorts.join(', ')} (HTTP(S))` : ''}${from}${to}.`,
    ...wrap(`Open the passive range explicitly, as these rules do. ${HELPER_FTPS_NOTE}`),
  ];
}

/** Shell-quotes one argument when it needs it. */
function sh(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The rules as text to paste, with the helper/FTPS note on top. */
export function formatRules(format: RuleFormat, spec: RuleSpec): string {
  const lines: string[] = [];
  const tag = ruleTag(spec.controlPort);
  switch (format) {
    case 'iptables': {
      const tool = spec.family === 6 ? 'ip6tables' : 'iptables';
      lines.push(...header(spec, '#'), `# -I puts them first in INPUT, before any DROP or REJECT. Remove them with -D and the same arguments.`);
      for (const rule of iptablesRules(spec)) lines.push([tool, '-I', 'INPUT', ...rule].map(sh).join(' '));
      break;
    }
    case 'iptables-restore': {
      // A fragment for `iptables-restore --noflush FILE` (or a rules.v4/v6 file of
      // iptables-persistent): the same rules as the shell form, in the file form.
      const tool = spec.family === 6 ? 'ip6tables-restore' : 'iptables-restore';
      lines.push(
        ...header(spec, '#'),
        `# Load with \`${tool} --noflush FILE\` (--noflush keeps the rules already loaded); -I puts them first in INPUT.`,
        '*filter',
        ...iptablesRules(spec).map((rule) => ['-I', 'INPUT', ...rule].map(sh).join(' ')),
        'COMMIT',
      );
      break;
    }
    case 'nftables':
      // An nft script: `nft -c -f FILE` checks it, `nft -f FILE` loads it, and it can go into
      // /etc/nftables.d/ (included after the table whose chain it adds to).
      lines.push(
        '#!/usr/sbin/nft -f',
        ...header(spec, '#'),
        '# Inserted into the input chain that filters this host: Debian\'s default is "inet filter input";',
        '# list yours with `nft list chains`. Check with `nft -c -f FILE`, load with `nft -f FILE`; remove it',
        '# with `nft -a list chain inet filter input` and `nft delete rule inet filter input handle N`.',
        `insert rule inet filter input ${nftRule(spec)}`,
      );
      break;
    case 'firewalld': {
      lines.push(...header(spec, '#'), "# Do not enable firewalld's ftp service instead: it relies on the FTP helper.");
      if (!spec.source && !spec.destination) {
        for (const { port } of openedPorts(spec, '-')) lines.push(`firewall-cmd --permanent --add-port=${port}/tcp`);
      } else {
        const family = spec.family === 6 ? 'ipv6' : 'ipv4';
        for (const { port } of openedPorts(spec, '-')) {
          const parts = [`rule family="${family}"`];
          if (spec.source) parts.push(`source address="${spec.source}"`);
          if (spec.destination) parts.push(`destination address="${spec.destination}"`);
          parts.push(`port port="${port}" protocol="tcp" accept`);
          lines.push(`firewall-cmd --permanent ${sh(`--add-rich-rule=${parts.join(' ')}`)}`);
        }
      }
      lines.push('firewall-cmd --reload');
      break;
    }
    case 'ufw':
      lines.push(...header(spec, '#'));
      for (const { port } of openedPorts(spec, ':')) {
        lines.push(
          ['ufw', 'allow', 'proto', 'tcp', 'from', spec.source ?? 'any', 'to', spec.destination ?? 'any', 'port', port, 'comment', tag].map(sh).join(' '),
        );
      }
      break;
    case 'windows':
      lines.push(...header(spec, '#'), '# PowerShell, as Administrator. Windows Firewall\'s StatefulFTP plays the FTP helper\'s role.');
      for (const { what, port } of openedPorts(spec, '-')) {
        const parts = [
          'New-NetFirewallRule',
          `-DisplayName "${tag} ${what === 'web' ? `HTTP(S) ${port}` : `FTP ${what}`}"`,
          '-Group "swfw"',
          '-Direction Inbound',
          '-Protocol TCP',
          `-LocalPort ${port}`,
          ...(spec.source ? [`-RemoteAddress ${spec.source}`] : []),
          ...(spec.destination ? [`-LocalAddress ${spec.destination}`] : []),
          '-Action Allow',
        ];
        lines.push(parts.join(' '));
      }
      break;
  }
  return `${lines.join('\n')}\n`;
}
