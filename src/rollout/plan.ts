import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { SITE_NAME } from '../engine/index.js';
import { parsePortRange } from '../core/portRange.js';
import type { CatalogEntry } from '../catalog/index.js';
import { weakAlgorithmList, type InventorySwitch } from './inventory.js';
import { readDocument } from './document.js';
import { Problems } from './validate.js';
import { checkCronWindow, isValidTimeZone, parseDuration, type MaintenanceWindow } from './window.js';

export interface RolloutPlanConfig {
  /** Catalog platform → image path in the catalog. */
  targets: Record<string, string>;
  waves: { canary: number; percents: number[] };
  /** Switches worked on at once; transfers are further capped by the passive range size. */
  concurrency: number;
  /** Halt (start no new switch) when more than this many switches failed… */
  maxFailed: number | null;
  /** …or more than this percentage of the fleet. */
  maxFailedPercent: number | null;
  window: MaintenanceWindow | null;
  /** Multi-site (`--engine`): per site, its concurrency, time zone or window, and failure threshold. */
  sites: Record<string, SitePolicy>;
  /**
   * The embedded server. `http`/`https`: ports for switches that download over HTTP(S) (REST
   * drivers such as aruba-aoscx; 63001/63002 in the HP layout), null when off; `https` needs
   * `tlsCert` and `tlsKey` (paths, relative to the plan).
   */
  server: { address: string; listen: string; port: number; pasvRange: string; images: string; pasvWait: number; http: number | null; https: number | null; tlsCert: string | null; tlsKey: string | null };
  sshTimeoutMs: number;
  pullTimeoutMs: number;
  /**
   * On-box hashing rate to assume, bytes per second, for every switch; null: each platform's own
   * (a hash command may print nothing for size ÷ rate, so its time limit follows the image size).
   */
  hashBytesPerSecond: number | null;
  /** Weak SSH algorithms every switch may use (ssh.ts WEAK_ALGORITHMS); switches add their own. */
  sshWeakAlgorithms: string[];
  credentialMinutes: number;
  /**
   * Switches without a `hostKey` in the inventory: `pinned` fails them before any password is sent;
   * `trust-on-first-use` journals the first key seen and holds every later connection to it.
   */
  hostKeys: HostKeyPolicy;
}

/** One site's part of a multi-site plan; every field falls back to the plan's own. */
export interface SitePolicy {
  /** Transfers at the site at once: its queue's global concurrency; default: the plan's `concurrency`. */
  concurrency: number | null;
  /** The site's own window; default: the plan's, read in `timeZone` when one is given. */
  window: MaintenanceWindow | null;
  /** The site's time zone, for the plan's daily or cron window. */
  timeZone: string | null;
  /** Over this, the site's queue is paused and the other sites go on. */
  maxFailed: number | null;
  maxFailedPercent: number | null;
}

/** The window a site works in: its own, else the plan's (a daily or cron one read in the site's time zone). */
export function siteWindow(plan: Pick<RolloutPlanConfig, 'window' | 'sites'>, site: string): MaintenanceWindow | null {
  const policy = plan.sites[site];
  if (policy?.window) return policy.window;
  const w = plan.window;
  if (w && policy?.timeZone && w.kind !== 'absolute') return { ...w, timeZone: policy.timeZone };
  return w;
}

const SITE_KEYS = ['concurrency', 'timeZone', 'window', 'failureThreshold'] as const;

function validateThreshold(raw: unknown, path: string, p: Problems): { maxFailed: number | null; maxFailedPercent: number | null } {
  if (raw === undefined || !p.isObject(raw, path)) return { maxFailed: null, maxFailedPercent: null };
  p.keys(raw, path, ['maxFailed', 'maxFailedPercent']);
  return {
    maxFailed: p.int(raw['maxFailed'], `${path}.maxFailed`, 0, 100000, true) ?? null,
    maxFailedPercent: p.int(raw['maxFailedPercent'], `${path}.maxFailedPercent`, 0, 100, true) ?? null,
  };
}

function validateSites(raw: unknown, p: Problems): Record<string, SitePolicy> {
  const sites: Record<string, SitePolicy> = {};
  if (raw === undefined || !p.isObject(raw, 'sites')) return sites;
  for (const [name, value] of Object.entries(raw)) {
    const at = `sites.${name}`;
    if (!SITE_NAME.test(name)) p.add(at, 'a site name is letters, digits, _ and - (as swfw agent --site takes it)');
    if (!p.isObject(value, at)) continue;
    p.keys(value, at, SITE_KEYS);
    const timeZone = p.string(value['timeZone'], `${at}.timeZone`, true) ?? null;
    if (timeZone && !isValidTimeZone(timeZone)) p.add(`${at}.timeZone`, 'unknown IANA time zone (e.g. Europe/Berlin, UTC)');
    const threshold = validateThreshold(value['failureThreshold'], `${at}.failureThreshold`, p);
    sites[name] = {
      concurrency: p.int(value['concurrency'], `${at}.concurrency`, 1, 1000, true) ?? null,
      // A site's daily or cron window may leave its time zone to the site's.
      window: value['window'] === undefined ? null : validateWindow(inheritZone(value['window'], timeZone), `${at}.window`, p),
      timeZone,
      ...threshold,
    };
  }
  return sites;
}

function inheritZone(window: unknown, timeZone: string | null): unknown {
  if (!timeZone || typeof window !== 'object' || window === null || Array.isArray(window)) return window;
  const w = window as Record<string, unknown>;
  return w['timeZone'] === undefined && w['notBefore'] === undefined && w['notAfter'] === undefined ? { ...w, timeZone } : w;
}

/** A `window` mapping in one of its three forms; problems go to `p` under `path`. */
function validateWindow(raw: unknown, path: string, p: Problems): MaintenanceWindow | null {
  let window: MaintenanceWindow | null = null;
  if (p.isObject(raw, path)) {
    const w = raw;
    p.keys(w, path, ['start', 'end', 'timeZone', 'notBefore', 'notAfter', 'cron', 'duration']);
    const forms = [w['start'] !== undefined || w['end'] !== undefined, w['cron'] !== undefined || w['duration'] !== undefined, w['notBefore'] !== undefined || w['notAfter'] !== undefined];
    if (forms.filter(Boolean).length > 1) {
      p.add(path, 'use one form: start + end + timeZone, cron + duration + timeZone, or notBefore/notAfter');
    } else if (forms[1]) {
      const cron = p.string(w['cron'], `${path}.cron`);
      const durationText = p.string(w['duration'], `${path}.duration`);
      const timeZone = p.string(w['timeZone'], `${path}.timeZone`);
      const durationMs = durationText === undefined ? undefined : parseDuration(durationText);
      if (typeof durationMs === 'string') p.add(`${path}.duration`, durationMs);
      const zoneOk = timeZone !== undefined && isValidTimeZone(timeZone);
      if (timeZone && !zoneOk) p.add(`${path}.timeZone`, 'unknown IANA time zone (e.g. Europe/Berlin, UTC)');
      const cronProblem = cron && zoneOk ? checkCronWindow(cron, timeZone) : null;
      if (cronProblem) p.add(`${path}.cron`, cronProblem);
      if (cron && zoneOk && !cronProblem && typeof durationMs === 'number') window = { kind: 'cron', cron, durationMs, timeZone: timeZone! };
    } else if (forms[0]) {
      const start = p.string(w['start'], `${path}.start`);
      const end = p.string(w['end'], `${path}.end`);
      const timeZone = p.string(w['timeZone'], `${path}.timeZone`);
      if (start && !HHMM.test(start)) p.add(`${path}.start`, 'must be HH:MM (24 h)');
      if (end && !HHMM.test(end)) p.add(`${path}.end`, 'must be HH:MM (24 h)');
      if (timeZone && !isValidTimeZone(timeZone)) p.add(`${path}.timeZone`, 'unknown IANA time zone (e.g. Europe/Berlin, UTC)');
      if (start && end && timeZone) window = { kind: 'daily', start, end, timeZone };
    } else {
      const instant = (key: 'notBefore' | 'notAfter') => {
        if (w[key] === undefined) return null;
        const t = typeof w[key] === 'string' ? Date.parse(w[key]) : NaN;
        if (Number.isNaN(t)) p.add(`${path}.${key}`, 'must be an ISO 8601 instant with a zone, e.g. 2026-03-14T22:00:00+01:00');
        return Number.isNaN(t) ? null : t;
      };
      const notBefore = instant('notBefore');
      const notAfter = instant('notAfter');
      if (notBefore !== null && notAfter !== null && notAfter <= notBefore) p.add(`${path}.notAfter`, `must be later than ${path}.notBefore`);
      window = { kind: 'absolute', notBefore, notAfter };
    }
  }
  return window;
}

export const HOST_KEY_POLICIES = ['pinned', 'trust-on-first-use'] as const;
export type HostKeyPolicy = (typeof HOST_KEY_POLICIES)[number];

const TOP = ['targets', 'waves', 'concurrency', 'failureThreshold', 'window', 'sites', 'server', 'timeouts', 'credentialMinutes', 'hostKeys', 'sshWeakAlgorithms'] as const;
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

export function validatePlan(raw: unknown, baseDir: string): { plan: RolloutPlanConfig | null; problems: Problems } {
  const p = new Problems();
  if (!p.isObject(raw, '(root)')) return { plan: null, problems: p };
  p.keys(raw, '', TOP);
  const targets: Record<string, string> = {};
  if (p.isObject(raw['targets'], 'targets')) {
    for (const [platform, image] of Object.entries(raw['targets'])) {
      const value = p.string(image, `targets.${platform}`);
      if (value) targets[platform] = value;
    }
    if (Object.keys(targets).length === 0) p.add('targets', 'name at least one platform: image');
  }
  let waves = { canary: 1, percents: [] as number[] };
  if (raw['waves'] !== undefined && p.isObject(raw['waves'], 'waves')) {
    const w = raw['waves'];
    p.keys(w, 'waves', ['canary', 'percent']);
    const canary = p.int(w['canary'], 'waves.canary', 0, 1000, true) ?? 1;
    const percents = w['percent'] ?? [];
    if (!Array.isArray(percents) || percents.some((x) => typeof x !== 'number' || x <= 0 || x > 100)) p.add('waves.percent', 'must be a list of percentages (1-100)');
    waves = { canary, percents: Array.isArray(percents) ? (percents as number[]) : [] };
  }
  const concurrency = p.int(raw['concurrency'], 'concurrency', 1, 1000, true) ?? 5;
  const window = raw['window'] === undefined ? null : validateWindow(raw['window'], 'window', p);
  const failure = validateThreshold(raw['failureThreshold'], 'failureThreshold', p);
  const maxFailed = failure.maxFailed;
  const maxFailedPercent = failure.maxFailedPercent;
  const sites = validateSites(raw['sites'], p);
  let server: RolloutPlanConfig['server'] | null = null;
  if (p.isObject(raw['server'], 'server')) {
    const s = raw['server'];
    p.keys(s, 'server', ['address', 'listen', 'port', 'pasvRange', 'images', 'pasvWait', 'http', 'https', 'tlsCert', 'tlsKey']);
    const http = p.int(s['http'], 'server.http', 0, 65535, true) ?? null;
    const https = p.int(s['https'], 'server.https', 0, 65535, true) ?? null;
    const tlsCert = p.string(s['tlsCert'], 'server.tlsCert', true) ?? null;
    const tlsKey = p.string(s['tlsKey'], 'server.tlsKey', true) ?? null;
    if (https !== null && (tlsCert === null || tlsKey === null)) p.add('server.https', 'needs server.tlsCert and server.tlsKey');
    if ((tlsCert === null) !== (tlsKey === null)) p.add(tlsCert === null ? 'server.tlsKey' : 'server.tlsCert', tlsCert === null ? 'needs server.tlsCert too' : 'needs server.tlsKey too');
    const fromPlan = (file: string | null) => (file === null ? null : isAbsolute(file) ? file : resolve(baseDir, file));
    const address = p.string(s['address'], 'server.address');
    const images = p.string(s['images'], 'server.images');
    const pasvRange = p.string(s['pasvRange'], 'server.pasvRange', true) ?? '63006-63010';
    const range = parsePortRange(pasvRange);
    if (typeof range === 'string') p.add('server.pasvRange', range);
    if (address && images) {
      server = {
        address,
        listen: p.string(s['listen'], 'server.listen', true) ?? '0.0.0.0',
        port: p.int(s['port'], 'server.port', 0, 65535, true) ?? 21,
        pasvRange,
        images: isAbsolute(images) ? images : resolve(baseDir, images),
        pasvWait: p.int(s['pasvWait'], 'server.pasvWait', 1, 3600, true) ?? 20,
        http,
        https,
        tlsCert: fromPlan(tlsCert),
        tlsKey: fromPlan(tlsKey),
      };
    }
  }
  let sshTimeoutMs = 10_000;
  let pullTimeoutMs = 30 * 60_000;
  let hashBytesPerSecond: number | null = null;
  if (raw['timeouts'] !== undefined && p.isObject(raw['timeouts'], 'timeouts')) {
    const t = raw['timeouts'];
    p.keys(t, 'timeouts', ['sshSeconds', 'pullSeconds', 'hashBytesPerSecond']);
    sshTimeoutMs = (p.int(t['sshSeconds'], 'timeouts.sshSeconds', 1, 3600, true) ?? 10) * 1000;
    pullTimeoutMs = (p.int(t['pullSeconds'], 'timeouts.pullSeconds', 1, 86400, true) ?? 1800) * 1000;
    hashBytesPerSecond = p.int(t['hashBytesPerSecond'], 'timeouts.hashBytesPerSecond', 1000, 10_000_000_000, true) ?? null;
  }
  const sshWeakAlgorithms = weakAlgorithmList(raw['sshWeakAlgorithms'], 'sshWeakAlgorithms', p);
  const credentialMinutes = p.int(raw['credentialMinutes'], 'credentialMinutes', 1, 24 * 60, true) ?? 120;
  const hostKeysText = p.string(raw['hostKeys'], 'hostKeys', true) ?? 'pinned';
  if (!(HOST_KEY_POLICIES as readonly string[]).includes(hostKeysText)) p.add('hostKeys', `must be one of ${HOST_KEY_POLICIES.join(', ')}`);
  const hostKeys = hostKeysText as HostKeyPolicy;
  if (p.list.length || !server) return { plan: null, problems: p };
  return { plan: { targets, waves, concurrency, maxFailed, maxFailedPercent, window, sites, server, sshTimeoutMs, pullTimeoutMs, hashBytesPerSecond, sshWeakAlgorithms, credentialMinutes, hostKeys }, problems: p };
}

export async function loadPlan(path: string): Promise<{ plan: RolloutPlanConfig; digest: string }> {
  const { plan, problems } = validatePlan(await readDocument(path), dirname(resolve(path)));
  if (!plan) throw new ConfigError(problems.list.map((x) => ({ path: `${path}: ${x.path}`, message: x.message })));
  const digest = createHash('sha256').update(await readFile(path)).digest('hex');
  return { plan, digest };
}

/** One switch's part in the rollout: pure data computed before anything runs. */
export interface PlannedSwitch {
  name: string;
  wave: number;
  image: string;
  fileName: string;
  targetVersion: string;
}

/**
 * Splits the fleet into waves: the canary (first `canary` switches by name), then each percentage
 * of the whole fleet in turn, then the rest. Deterministic (sorted by name), so a resumed run and
 * a dry run see the same waves. Empty waves are dropped.
 */
export function computeWaves(names: readonly string[], waves: { canary: number; percents: readonly number[] }): string[][] {
  const sorted = [...names].sort();
  const out: string[][] = [];
  let i = 0;
  const take = (n: number) => {
    const wave = sorted.slice(i, i + Math.max(0, n));
    i += wave.length;
    if (wave.length) out.push(wave);
  };
  take(waves.canary);
  for (const percent of waves.percents) take(Math.ceil((sorted.length * percent) / 100));
  take(sorted.length - i);
  return out;
}

/** A plan target that cannot serve the inventory: its platform, what is wrong, and the switches that need it. */
export interface PlanProblem {
  /** The catalog platform: the plan's `targets.<platform>` key. */
  platform: string;
  message: string;
  switches: string[];
}

/** "emu-001, emu-008" or "emu-001, emu-008, emu-015 and 4 more". */
export function nameSwitches(names: readonly string[], shown = 3): string {
  return names.length <= shown ? names.join(', ') : `${names.slice(0, shown).join(', ')} and ${names.length - shown} more`;
}

/**
 * Matches switches to their catalog image and waves. A platform with no target, or a target not
 * in the catalog, is one problem naming the switches that need it, never silently skipped: the
 * fix belongs in the plan's `targets`.
 */
export function planRollout(
  plan: RolloutPlanConfig,
  switches: readonly InventorySwitch[],
  findImage: (file: string) => CatalogEntry | undefined,
): { planned: PlannedSwitch[]; waves: string[][]; problems: PlanProblem[] } {
  const problems = new Map<string, PlanProblem>();
  const problem = (platform: string, message: string, name: string) => {
    const known = problems.get(platform) ?? { platform, message, switches: [] };
    known.switches.push(name);
    problems.set(platform, known);
  };
  const byName = new Map<string, PlannedSwitch>();
  for (const s of switches) {
    const image = plan.targets[s.platform];
    if (!image) {
      problem(s.platform, `no target image for platform ${s.platform}`, s.name);
      continue;
    }
    const entry = findImage(image);
    if (!entry) {
      problem(s.platform, `target image ${image} is not in the catalog`, s.name);
      continue;
    }
    byName.set(s.name, { name: s.name, wave: -1, image: entry.file, fileName: basename(entry.file), targetVersion: entry.version });
  }
  const waves = computeWaves([...byName.keys()], plan.waves);
  waves.forEach((wave, w) => wave.forEach((name) => (byName.get(name)!.wave = w)));
  return { planned: [...byName.values()].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name)), waves, problems: [...problems.values()] };
}
