import type { LogFields, Logger } from '../../src/core/logger.js';

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: LogFields;
}

/** A Logger that keeps every record, so tests can assert on warnings and on what is never logged. */
export class RecordingLogger implements Logger {
  constructor(
    readonly records: LogRecord[] = [],
    private readonly bound: LogFields = {},
  ) {}
  private push(level: LogRecord['level'], message: string, fields?: LogFields): void {
    this.records.push({ level, message, fields: { ...this.bound, ...fields } });
  }
  debug(message: string, fields?: LogFields): void {
    this.push('debug', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.push('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.push('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.push('error', message, fields);
  }
  child(fields: LogFields): Logger {
    return new RecordingLogger(this.records, { ...this.bound, ...fields });
  }
  /** Every record as one JSON text, for "never contains" assertions. */
  dump(): string {
    return this.records.map((r) => JSON.stringify(r)).join('\n');
  }
}
