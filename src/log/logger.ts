import winston from 'winston';
import type { LogFields, Logger } from '../core/logger.js';

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

class WinstonLogger implements Logger {
  constructor(private readonly target: winston.Logger) {}
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

/** Creates the process logger: readable lines on stderr and, optionally, JSON lines in a file. */
export function createLogger(options: LoggerOptions): ClosableLogger {
  const transports: winston.transport[] = [];
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
