import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type winstonModule from 'winston';
import type { LogFields, Logger } from '../core/logger.js';

/**
 * winston is loaded on first use: it takes ~70 ms to load, a fifth of `swfw pull`'s start-up, and
 * a console-only logger that never logs at its level (a quiet pull, check-ports) never needs it.
 */
const requireCjs = createRequire(import.meta.url);
let loadedWinston: typeof winstonModule | null = null;
const winstonLib = (): typeof winstonModule => (loadedWinston ??= requireCjs('winston') as typeof winstonModule);

type Level = LoggerOptions['level'];
const SEVERITY: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Field names whose values are never written, whatever the caller passed. */
const SECRET_FIELD = /^pass$|password|passwd|secret|token|credential/i;

export interface LoggerOptions {
  level: 'error' | 'warn' | 'info' | 'debug';
  /** JSON-lines file, one record per line. */
  logFile?: string | null;
  /** Readable console output on stderr. Default true. */
  console?: boolean;
  /** Also to the local syslog, through logger(1) (see SyslogOptions). */
  syslog?: SyslogOptions | null;
}

/**
 * The local syslog is a Unix *datagram* socket (/dev/log), which Node's net and dgram modules
 * cannot open; the libraries that can (unix-dgram, under winston-syslog) are native add-ons. So
 * records go, one line each, to one long-lived logger(1) (util-linux, Debian's essential
 * bsdutils) that sends each line as an RFC 3164 message to the socket, as glibc's syslog() does.
 */
export interface SyslogOptions {
  /** The facility's code (daemon = 3, local0 = 16 …): PRI = facility × 8 + severity. */
  facility: number;
  /** The socket path: /dev/log. */
  socket: string;
  /** Run logger(1) as this user from its start (the user serve drops to), never as root. */
  user?: { uid: number; gid: number } | null;
}

/** RFC 5424 §6.2.1 severities of our levels. */
const SYSLOG_SEVERITY: Record<Level, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface ClosableLogger extends Logger {
  /** Flushes and closes the file transport. */
  close(): Promise<void>;
}

/** One logger(1) child that sends each line written to it to the local syslog. */
class SyslogWriter {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private failed = false;

  constructor(options: SyslogOptions) {
    const args = ['--socket', options.socket, '--rfc3164', '--prio-prefix', '--tag', 'swfw', `--id=${process.pid}`];
    this.child = spawn('logger', args, {
      stdio: ['pipe', 'ignore', 'inherit'],
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
    });
    this.exited = new Promise((resolve) => this.child.once('close', () => resolve()));
    this.child.once('error', (err) => this.fail(`cannot start logger(1) for --syslog: ${err.message}`));
    this.child.stdin!.on('error', (err) => this.fail(`logger(1) for --syslog stopped: ${err.message}`));
  }

  /** Lines `<PRI>message` for logger(1). */
  get input(): NodeJS.WritableStream {
    return this.child.stdin!;
  }

  private fail(problem: string): void {
    if (this.failed) return;
    this.failed = true;
    process.stderr.write(`swfw: ${problem}; records go on to the console and the log file only\n`);
  }

  /** Ends logger(1)'s input; resolves once it has sent what it read and exited. */
  close(): Promise<void> {
    this.child.stdin!.end();
    return this.exited;
  }
}

function formats(winston: typeof winstonModule) {
  const redact = winston.format((info) => {
    for (const key of Object.keys(info)) {
      if (SECRET_FIELD.test(key)) info[key] = '[redacted]';
    }
    return info;
  });
  const readable = winston.format.printf((info) => {
    const { level, message, timestamp, ...rest } = info;
    const fields = Object.entries(rest)
      .filter(([key]) => typeof key === 'string')
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
    return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${fields ? ` ${fields}` : ''}`;
  });
  return { redact, readable };
}

class WinstonLogger implements Logger {
  constructor(private readonly target: winstonModule.Logger) {}
  debug(message: string, fields?: LogFields): void {
    this.target.debug(message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.target.info(message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.target.warn(message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.target.error(message, fields);
  }
  child(fields: LogFields): Logger {
    return new WinstonLogger(this.target.child(fields));
  }
}

/**
 * A console-only logger that builds the winston one at the first record at or above its level;
 * children share it. Records below the level cost one comparison.
 */
class DeferredLogger implements Logger {
  private resolved: Logger | null = null;

  constructor(
    private readonly root: { level: Level; closed: boolean; get(): ClosableLogger },
    private readonly fields: LogFields | null,
  ) {}

  private write(level: Level, message: string, fields?: LogFields): void {
    if (this.root.closed || SEVERITY[level] > SEVERITY[this.root.level]) return;
    this.resolved ??= this.fields ? this.root.get().child(this.fields) : this.root.get();
    this.resolved[level](message, fields);
  }
  debug(message: string, fields?: LogFields): void {
    this.write('debug', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.write('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.write('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.write('error', message, fields);
  }
  child(fields: LogFields): Logger {
    return new DeferredLogger(this.root, { ...this.fields, ...fields });
  }
}

/** Creates the process logger: readable lines on stderr and, optionally, JSON lines in a file. */
export function createLogger(options: LoggerOptions): ClosableLogger {
  // A log file is opened at once, so a bad path fails at start, not at the first record.
  if (options.logFile || options.syslog || options.console === false) return createWinstonLogger(options);
  let built: ClosableLogger | null = null;
  const root = { level: options.level, closed: false, get: () => (built ??= createWinstonLogger(options)) };
  const logger = new DeferredLogger(root, null) as DeferredLogger & ClosableLogger;
  logger.close = () => {
    // Records after close() are dropped, whether or not winston was ever built.
    root.closed = true;
    return built?.close() ?? Promise.resolve();
  };
  return logger;
}

function createWinstonLogger(options: LoggerOptions): ClosableLogger {
  const winston = winstonLib();
  const { redact, readable } = formats(winston);
  const transports: winstonModule.transport[] = [];
  if (options.console !== false) {
    transports.push(
      new winston.transports.Console({
        stderrLevels: ['error', 'warn', 'info', 'debug'],
        format: winston.format.combine(redact(), winston.format.timestamp(), readable),
      }),
    );
  }
  if (options.logFile) {
    transports.push(
      new winston.transports.File({
        filename: options.logFile,
        format: winston.format.combine(redact(), winston.format.timestamp(), winston.format.json()),
      }),
    );
  }
  let syslog: SyslogWriter | null = null;
  if (options.syslog) {
    syslog = new SyslogWriter(options.syslog);
    const { facility } = options.syslog;
    // `<PRI>` then the readable line without its timestamp (syslog stamps each message), one
    // line per record: logger(1) reads lines, and a newline inside would forge a second record.
    const line = winston.format.printf((info) => {
      const { level, message, timestamp, ...rest } = info;
      void timestamp;
      const fields = Object.entries(rest)
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
        .join(' ');
      const text = `${String(message)}${fields ? ` ${fields}` : ''}`.replace(/[\r\n]+/g, ' ');
      return `<${facility * 8 + SYSLOG_SEVERITY[level as Level]}>${text}`;
    });
    transports.push(new winston.transports.Stream({ stream: syslog.input, format: winston.format.combine(redact(), line) }));
  }
  const target = winston.createLogger({ level: options.level, transports, exitOnError: false });
  if (transports.length === 0) target.silent = true;
  const logger = new WinstonLogger(target) as WinstonLogger & ClosableLogger;
  logger.close = () =>
    new Promise<void>((resolve) => {
      const files = transports.filter((t) => t instanceof winston.transports.File);
      const done = () => void (syslog ? syslog.close() : Promise.resolve()).then(resolve);
      if (files.length === 0) {
        target.close();
        done();
        return;
      }
      // 'finish' fires once the file stream has flushed every queued record.
      target.once('finish', done);
      target.end();
    });
  return logger;
}
