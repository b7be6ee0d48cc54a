import type { LogFields, Logger } from '../core/logger.js';

/**
 * ftp-srv expects a bunyan logger: `log.info(fieldsOrError?, message)` plus `child()`.
 * Handing it raw winston fails silently (no 220 greeting), so it gets this adapter.
 * Its `trace` records carry raw command lines and are dropped.
 */
export interface BunyanShapedLogger {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  fatal(...args: unknown[]): void;
  child(fields: LogFields): BunyanShapedLogger;
}

function split(args: unknown[]): [string, LogFields] {
  const [first, ...rest] = args;
  if (first instanceof Error) return [rest.map(String).join(' ') || first.message, { err: first.message }];
  if (typeof first === 'object' && first !== null) {
    return [rest.map(String).join(' ') || 'ftp-srv', { ...(first as LogFields) }];
  }
  return [args.map(String).join(' '), {}];
}

export function toBunyanShape(logger: Logger): BunyanShapedLogger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [message, fields] = split(args);
      logger[level](message, fields);
    };
  return {
    trace() {},
    debug: at('debug'),
    info: at('debug'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('error'),
    child: (fields) => toBunyanShape(logger.child(fields)),
  };
}
