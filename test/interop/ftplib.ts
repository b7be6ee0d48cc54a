import { run, type RunResult } from './support.js';

/**
 * Drives Python's standard ftplib, the reference client pyftpdlib tests against. One script,
 * configured by a JSON argument, reports every reply (or the ftplib error) as one JSON line on
 * stdout; the ftplib debug log (`*cmd*` / `*resp*` lines) comes before it.
 */
const SCRIPT = String.raw`
import ftplib, json, ssl, sys
cfg = json.loads(sys.argv[1])
out = {}
try:
    if cfg.get('tls'):
        # The fixture certificate is self-signed: encrypt, but do not verify.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ftp = ftplib.FTP_TLS(context=ctx, timeout=cfg['timeout'])
    else:
        ftp = ftplib.FTP(timeout=cfg['timeout'])
    ftp.set_debuglevel(1)
    out['welcome'] = ftp.connect(cfg['host'], cfg['port'])
    # FTP_TLS.login sends AUTH TLS first (RFC 4217 section 4).
    out['login'] = ftp.login(cfg['user'], cfg['password'])
    if cfg.get('tls'):
        out['prot'] = ftp.prot_p()
    ftp.set_pasv(cfg.get('passive', True))
    if cfg.get('nlst'):
        out['nlst'] = ftp.nlst(cfg['nlst'])
    if cfg.get('path'):
        with open(cfg['out'], 'wb') as f:
            out['retr'] = ftp.retrbinary('RETR ' + cfg['path'], f.write)
    out['quit'] = ftp.quit()
except ftplib.all_errors as e:
    out['error'] = type(e).__name__
    out['message'] = str(e)
sys.stdout.flush()
print(json.dumps(out))
`;

export interface FtplibOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** FTP_TLS with AUTH TLS, PBSZ 0 and PROT P. */
  tls?: boolean;
  /** set_pasv(); default true. */
  passive?: boolean;
  /** A directory to NLST. */
  nlst?: string;
  /** A file to RETR into `out`. */
  path?: string;
  out?: string;
}

/** The replies ftplib returned, or the ftplib exception it raised (`error`, `message`). */
export interface FtplibOutcome {
  welcome?: string;
  login?: string;
  prot?: string;
  nlst?: string[];
  retr?: string;
  quit?: string;
  error?: string;
  message?: string;
}

export async function runFtplib(options: FtplibOptions): Promise<{ outcome: FtplibOutcome; result: RunResult }> {
  const config = { timeout: 10, ...options };
  const result = await run('python3', ['-c', SCRIPT, JSON.stringify(config)]);
  const last = result.stdout.trim().split('\n').pop() ?? '';
  let outcome: FtplibOutcome;
  try {
    outcome = JSON.parse(last) as FtplibOutcome;
  } catch {
    throw new Error(`python3 ftplib gave no result (exit ${result.code}, timed out: ${result.timedOut})\n${result.stdout}\n${result.stderr}`);
  }
  return { outcome, result };
}
