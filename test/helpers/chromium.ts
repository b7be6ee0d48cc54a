/**
 * A page rendered by a real browser (Debian's chromium, headless) with the network off: what it
 * rendered, what it printed on its console, and every request the page made, from chromium's own
 * net log. The browser runs in a fresh network namespace when this process may make one (root),
 * and always behind a proxy that does not exist and a resolver that resolves nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The chromium binary on PATH, or null. */
export function findChromium(): string | null {
  for (const name of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return null;
}

/** Whether `unshare --net` works here (root, or a kernel that lets this user make namespaces). */
function canUnshareNet(): boolean {
  return spawnSync('unshare', ['--net', 'true'], { stdio: 'ignore' }).status === 0;
}

export interface RenderedPage {
  /** The DOM after load, serialised (`--dump-dom`). */
  dom: string;
  /** The DOM's text: tags dropped, entities decoded, white space collapsed. */
  text: string;
  /**
   * Everything the page printed on its console (errors, CSP violations, console.log alike).
   * Chromium's own pages (chrome://, chrome-untrusted://, extensions) log to the same stream, for
   * instance a "Slow network is detected" from its new-tab box when the network is off: those
   * name their own source and are left out.
   */
  console: string[];
  /** URLs the page itself asked for (chromium's own background requests left out), file: and data: excepted. */
  requests: string[];
  /** Whether it ran in its own network namespace. */
  isolated: boolean;
}

/** A console line whose source is one of chromium's own pages, not the document rendered. */
const BROWSER_OWN_SOURCE = /, source: (chrome|chrome-untrusted|chrome-extension|devtools):\/\//;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", nbsp: ' ' };

export function domText(dom: string): string {
  return dom
    .replace(/<(style|title)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    // Inline elements join their neighbours ("<b>3</b> verified"); any other tag separates words.
    .replace(/<\/?(b|i|small|code|span|a|em|strong)\b[^>]*>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&(amp|lt|gt|quot|#39|nbsp);/g, (_, e: string) => ENTITIES[e]!)
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Requests a document started, from the net log: chromium's background requests (component
 * updates, network time) carry the initiator "not an origin"; a page's carry its origin ("null"
 * for a file: page). A test renders a control page to prove this still tells them apart.
 */
function pageRequests(netLogPath: string): string[] {
  const log = JSON.parse(readFileSync(netLogPath, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: { type: number; params?: Record<string, unknown> }[] };
  const startJob = log.constants.logEventTypes['URL_REQUEST_START_JOB'];
  if (startJob === undefined) throw new Error('the net log has no URL_REQUEST_START_JOB events type: chromium changed its format');
  const urls = new Set<string>();
  for (const e of log.events) {
    if (e.type !== startJob || typeof e.params?.['url'] !== 'string') continue;
    if (e.params['initiator'] === 'not an origin') continue;
    if (/^(file|data|about):/.test(e.params['url'])) continue;
    urls.add(e.params['url']);
  }
  return [...urls];
}

/** Renders `htmlPath` at 1400×2000 and, with `screenshot`, saves a PNG of it there. */
export async function renderInChromium(chromium: string, htmlPath: string, options: { screenshot?: string; timeoutMs?: number } = {}): Promise<RenderedPage> {
  const scratch = mkdtempSync(join(tmpdir(), 'swfw-chromium-'));
  const netLog = join(scratch, 'net-log.json');
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    `--user-data-dir=${join(scratch, 'profile')}`,
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-breakpad',
    // Network off even outside a namespace: every proxied request goes to a closed port, every name fails.
    '--proxy-server=127.0.0.1:9',
    '--proxy-bypass-list=<-loopback>',
    '--host-resolver-rules=MAP * ~NOTFOUND',
    '--enable-logging=stderr',
    '--v=0',
    `--log-net-log=${netLog}`,
    '--window-size=1400,2000',
    ...(options.screenshot ? [`--screenshot=${options.screenshot}`] : []),
    '--dump-dom',
    pathToFileURL(htmlPath).href,
  ];
  const isolated = canUnshareNet();
  const [command, argv] = isolated ? ['unshare', ['--net', chromium, ...args]] : [chromium, args];
  // Its own process group, so the helpers it forks go with it if it has to be killed.
  const child = spawn(command, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: scratch } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(killGroup, options.timeoutMs ?? 60_000);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code !== 0) throw new Error(`chromium exited with ${code}: ${stderr.slice(-2000)}`);
    return {
      dom: stdout,
      text: domText(stdout),
      console: stderr.split('\n').filter((line) => /:CONSOLE[:(]/.test(line) && !BROWSER_OWN_SOURCE.test(line)),
      requests: pageRequests(netLog),
      isolated,
    };
  } finally {
    clearTimeout(timer);
    // Whatever of its group outlived it (nothing, normally).
    killGroup();
    rmSync(scratch, { recursive: true, force: true });
  }
}
