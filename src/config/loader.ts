import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, type ConfigProblem } from '../core/errors.js';
import { SCALAR_FIELDS, buildServerConfig, coerceScalar, type ScalarKey, type ServerConfig } from './schema.js';

/** The project root: config/default.json and fixtures/ are found relative to it, not to the cwd. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_CONFIG_FILE = join(PROJECT_ROOT, 'config', 'default.json');
/** The env var that holds the password of the account made by `--user` and of the default account. */
export const PASSWORD_ENV = 'SWFW_PASSWORD';

/**
 * The images directory serve uses when none is set (config/default.json's `images`, a production
 * path): `swfw catalog` falls back to it too, so both name the same repository.
 */
export function defaultImagesDir(defaultsFile: string = DEFAULT_CONFIG_FILE): string {
  const images = (JSON.parse(readFileSync(defaultsFile, 'utf8')) as { images?: unknown }).images;
  if (typeof images !== 'string') throw new Error(`${defaultsFile}: images: must be a string`);
  return resolve(PROJECT_ROOT, images);
}

/** Keys whose values are paths; relative paths resolve against the layer's base directory. */
const PATH_KEYS: ReadonlySet<string> = new Set(['images', 'tlsCert', 'tlsKey', 'logFile', 'xferlog', 'syslogSocket']);

/** Flag values as commander hands them over: strings, or true for switches. */
export type ServeFlags = Partial<Record<ScalarKey, string | boolean>> & { user?: string };

export interface LoadOptions {
  /** `--config FILE`: layered over config/default.json. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  flags?: ServeFlags;
  /** Base for relative paths given by env and flags. Default: process.cwd(). */
  cwd?: string;
  /** Override of the defaults file (tests). */
  defaultsFile?: string;
}

/** A layer of raw values with where they came from, for error lines. */
interface Layer {
  source: string;
  baseDir: string;
  values: Record<string, unknown>;
}

function readJsonLayer(file: string, source: string, baseDir: string, problems: ConfigProblem[]): Layer | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push({ path: source, message: code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? 'error'})` });
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    problems.push({ path: source, message: `is not valid JSON: ${(err as Error).message}` });
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push({ path: source, message: 'must hold a JSON object' });
    return null;
  }
  return { source, baseDir, values: parsed as Record<string, unknown> };
}

/**
 * Builds the one validated, frozen server config: config/default.json, then `--config FILE`,
 * then SWFW_* env vars, then flags. Every problem is collected, each with its source and key,
 * and thrown together as a ConfigError: one line per problem.
 */
export function loadServerConfig(options: LoadOptions = {}): ServerConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: ConfigProblem[] = [];
  const layers: Layer[] = [];
  const defaultsFile = options.defaultsFile ?? DEFAULT_CONFIG_FILE;
  const defaults = readJsonLayer(defaultsFile, defaultsFile, PROJECT_ROOT, problems);
  if (defaults) layers.push(defaults);
  if (options.configFile) {
    const file = resolve(cwd, options.configFile);
    const layer = readJsonLayer(file, options.configFile, dirname(file), problems);
    if (layer) layers.push(layer);
  }
  const envValues: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(SCALAR_FIELDS)) {
    if (env[field.env] !== undefined) envValues[key] = env[field.env];
  }
  layers.push({ source: 'env', baseDir: cwd, values: envValues });
  const flagValues: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(options.flags ?? {})) {
    if (raw === undefined) continue;
    if (key === 'user') flagValues['accounts'] = [{ user: raw, passwordEnv: PASSWORD_ENV }];
    else flagValues[key] = raw;
  }
  layers.push({ source: 'flags', baseDir: cwd, values: flagValues });

  const merged: Record<string, unknown> = {};
  const sourceOf: Record<string, string> = {};
  /** Where a key came from, as an admin would find it: a file and key, an env var, or a flag. */
  const locate = (layer: Layer, key: string, path = key): string =>
    layer.source === 'env'
      ? `env ${SCALAR_FIELDS[key as ScalarKey]?.env ?? key}`
      : layer.source === 'flags'
        ? `--${key === 'accounts' ? 'user' : kebab(key)}`
        : `${layer.source}: ${path}`;
  for (const layer of layers) {
    for (const [key, raw] of Object.entries(layer.values)) {
      if (key === 'accounts') {
        merged[key] = raw;
        sourceOf[key] = layer.source;
        continue;
      }
      const field = SCALAR_FIELDS[key as ScalarKey];
      if (!field) {
        problems.push({ path: locate(layer, key), message: `unknown key (known: ${[...Object.keys(SCALAR_FIELDS), 'accounts'].join(', ')})` });
        continue;
      }
      const coerced = coerceScalar(field, raw);
      if ('problem' in coerced) {
        // Keep the earlier layer's value so the checks below still report every other problem.
        problems.push({ path: locate(layer, key), message: coerced.problem });
        continue;
      }
      let value = coerced.value;
      if (PATH_KEYS.has(key) && typeof value === 'string' && !isAbsolute(value)) value = resolve(layer.baseDir, value);
      merged[key] = value;
      sourceOf[key] = layer.source;
    }
  }
  const config = buildServerConfig(merged, problems, (path) => {
    const key = path.split(/[.[]/)[0]!;
    const layer = layers.find((l) => l.source === sourceOf[key]);
    return layer ? locate(layer, key, path) : path;
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
