/**
 * The import direction, checked on the sources: cli → features → core (docs/design.md). core
 * imports nothing of ours; a feature imports only core and the features below it, never the CLI;
 * and each third-party library is imported by one module only.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';

/** Lowest first: a directory may import only from directories before it (and from itself). */
const LAYERS = ['core', 'log', 'config', 'verify', 'catalog', 'client', 'server', 'observability', 'firewall', 'switches', 'engine', 'rollout', 'cli'];
/** Each library and the one module that may import it. */
const LIBRARY_HOMES: Record<string, string> = {
  'ftp-srv': 'src/server/ftpSrv.ts',
  'basic-ftp': 'src/client/ftp.ts',
  ssh2: 'src/switches/ssh.ts',
  winston: 'src/log/logger.ts',
  commander: 'src/cli/program.ts',
  yaml: 'src/rollout/document.ts',
  croner: 'src/rollout/cron.ts',
  bullmq: 'src/engine/bullmq.ts',
  ioredis: 'src/engine/bullmq.ts',
  'prom-client': 'src/observability/prometheus.ts',
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const SRC = join(PROJECT_ROOT, 'src');
const files = sources(SRC).map((path) => ({ path: relative(PROJECT_ROOT, path), text: readFileSync(path, 'utf8') }));
const importsOf = (text: string) => [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? m[2]!);

describe('layers and library homes (the import direction)', function () {
  it('every source directory has its place in the layers', function () {
    const dirs = new Set(files.map((f) => f.path.split('/')[1]!));
    expect([...dirs].filter((d) => !LAYERS.includes(d))).to.deep.equal([]);
  });

  it('no module imports from a layer above its own (core imports nothing of ours, no feature imports the CLI)', function () {
    const breaks: string[] = [];
    for (const f of files) {
      const layer = LAYERS.indexOf(f.path.split('/')[1]!);
      for (const spec of importsOf(f.text)) {
        if (!spec.startsWith('.')) continue;
        const target = relative(SRC, join(PROJECT_ROOT, f.path, '..', spec)).split('/')[0]!;
        const targetLayer = LAYERS.indexOf(target);
        if (targetLayer > layer) breaks.push(`${f.path} imports ${spec} (${target} is above ${LAYERS[layer]})`);
      }
    }
    expect(breaks).to.deep.equal([]);
  });

  it('each third-party library is imported by its one module only', function () {
    const strays: string[] = [];
    for (const f of files) {
      for (const spec of importsOf(f.text)) {
        const library = Object.keys(LIBRARY_HOMES).find((l) => spec === l || spec.startsWith(`${l}/`));
        if (library && f.path !== LIBRARY_HOMES[library]) strays.push(`${f.path} imports ${spec}`);
      }
    }
    expect(strays).to.deep.equal([]);
  });

  it('only the CLI chooses exit codes', function () {
    const choosers = files.filter((f) => !f.path.startsWith('src/cli/') && /\bExit(Code|Error)\b/.test(f.text)).map((f) => f.path);
    expect(choosers).to.deep.equal([]);
  });
});
