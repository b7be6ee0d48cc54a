// `npm test` runs real clients and peers. This installs the missing ones with apt-get when run
// as root (CI and the dev machines are root), and otherwise names exactly what is missing.
// It never lets the suite skip silently.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** command → Debian package that provides it. */
const TOOLS = {
  curl: 'curl',
  wget: 'wget',
  lftp: 'lftp',
  busybox: 'busybox',
  vsftpd: 'vsftpd',
  python3: 'python3',
  openssl: 'openssl',
  ip: 'iproute2',
  iptables: 'iptables',
  nft: 'nftables',
  // A real OpenSSH client shows what an emulated Cisco switch does with exec channels.
  ssh: 'openssh-client',
  // The job engine of multi-site rollouts (BullMQ's Redis), started per test on its own port.
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  // The systemd units in contrib/ are checked with systemd's own verifier.
  'systemd-analyze': 'systemd',
  // The HTML rollout report is rendered by a real browser, headless, with the network off.
  chromium: 'chromium',
};
/**
 * Files, not commands, and their packages: a font, so the report's screenshot has text in it
 * (chromium only recommends fonts, and --no-install-recommends leaves them out).
 */
const FILES = {
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf': 'fonts-dejavu-core',
};
const SBIN = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

function has(command) {
  if (spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0) return true;
  return SBIN.some((dir) => existsSync(`${dir}/${command}`));
}

const missing = [...Object.entries(TOOLS).filter(([command]) => !has(command)), ...Object.entries(FILES).filter(([path]) => !existsSync(path))];
if (missing.length === 0) process.exit(0);
const packages = [...new Set(missing.map(([, pkg]) => pkg))];
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error(`swfw tests need: ${missing.map(([c]) => c).join(', ')}`);
  console.error(`install them with: sudo apt-get install -y ${packages.join(' ')}`);
  process.exit(1);
}
console.error(`installing test tools: ${packages.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
const still = [...Object.keys(TOOLS).filter((command) => !has(command)), ...Object.keys(FILES).filter((path) => !existsSync(path))];
if (still.length > 0) {
  console.error(`still missing after apt-get: ${still.join(', ')}`);
  process.exit(1);
}
