/** Where an image is pulled from: an `ftp://user@host:port/path` URL, parsed. */
export interface FtpTarget {
  host: string;
  port: number;
  /** `anonymous` when the URL names no user. */
  user: string;
  /** A password written in the URL (discouraged: it shows in `ps` and shell history), else null. */
  urlPassword: string | null;
  /** The remote path, decoded, starting with `/` (for display; the pull walks `directories`). */
  path: string;
  /**
   * RFC 1738 §3.2.2: the path is relative to the login directory, walked one CWD per segment.
   * `absolute` when it starts with `%2F` (or an empty segment, `//`): CWD / first.
   */
  absolute: boolean;
  /** Decoded directory segments, in order (each one CWD). */
  directories: string[];
  /** The file name, decoded (the SIZE and RETR argument after the walk). */
  file: string;
  /** The URL without any password, safe for logs and reports. */
  display: string;
}

export const FTP_DEFAULT_PORT = 21;
export const ANONYMOUS_USER = 'anonymous';

/**
 * Parses `ftp://[user[:password]@]host[:port]/path` (RFC 1738 §3.2). Percent-escapes are decoded in
 * the user, password and path; a `;type=i` suffix is accepted and ignored (binary is always used).
 * Returns the target or a message that says what is wrong.
 */
export function parseFtpUrl(text: string): FtpTarget | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `"${text}" is not a URL; expected ftp://user@host:port/path` };
  }
  if (url.protocol !== 'ftp:') {
    return { problem: `only ftp:// URLs are supported (got ${url.protocol}//); use --tls for explicit FTPS` };
  }
  if (url.search || url.hash) return { problem: 'the URL must not have a query (?) or fragment (#)' };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) return { problem: 'the URL has no host' };
  let user: string;
  let urlPassword: string | null;
  let segments: string[];
  try {
    user = url.username ? decodeURIComponent(url.username) : ANONYMOUS_USER;
    urlPassword = url.password ? decodeURIComponent(url.password) : null;
    // Split before decoding: a %2F inside a segment is part of that segment's name.
    segments = url.pathname.replace(/;type=[aid]$/i, '').split('/').slice(1).map(decodeURIComponent);
  } catch {
    return { problem: 'the URL has an invalid percent-escape' };
  }
  // `//path` (an empty first segment) or `/%2Fpath` make the path absolute (RFC 1738 §3.2.2, as curl reads it).
  let absolute = false;
  if (segments.length > 1 && segments[0] === '') {
    absolute = true;
    segments.shift();
  }
  if (segments[0]?.startsWith('/')) {
    absolute = true;
    segments[0] = segments[0].replace(/^\/+/, '');
    if (segments[0] === '') segments.shift();
  }
  const path = `/${segments.join('/')}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(user + (urlPassword ?? '') + path)) {
    return { problem: 'the URL must not contain control characters (CR, LF and NUL would inject FTP commands)' };
  }
  const file = segments.at(-1) ?? '';
  if (file === '') return { problem: 'the URL must name a file, e.g. ftp://switch@host/cisco/image.bin' };
  const directories = segments.slice(0, -1);
  if (directories.some((d) => d === '')) return { problem: 'the URL path has an empty segment (//) after its start' };
  const port = url.port ? Number(url.port) : FTP_DEFAULT_PORT;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const shownUser = url.username ? `${url.username}@` : '';
  return {
    host,
    port,
    user,
    urlPassword,
    path,
    absolute,
    directories,
    file,
    display: `ftp://${shownUser}${shownHost}${url.port ? `:${url.port}` : ''}${url.pathname}`,
  };
}
