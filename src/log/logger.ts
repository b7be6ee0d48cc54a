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
}

export interface ClosableLogger extends Logger {
  /** Flushes and closes the file transport. */
  close(): Promise<void>;
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
  if (options.logFile || options.console === false) return createWinstonLogger(options);
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
  const target = winston.createLogger({ level: options.level, transports, exitOnError: false });
  if (transports.length === 0) target.silent = true;
  const logger = new WinstonLogger(target) as WinstonLogger & ClosableLogger;
  logger.close = () =>
    new Promise<void>((resolve) => {
      const files = transports.filter((t) => t instanceof winston.transports.File);
      if (files.length === 0) {
        target.close();
        resolve();
        return;
      }
      // 'finish' fires once the file stream has flushed every queued record.
      target.once('finish', () => resolve());
      target.end();
    });
  return logger;
}
