/** Process exit codes, named once; the CLI is the only place that exits with them. */
export const ExitCode = {
  OK: 0,
  /** A runtime failure with no more specific code (also check-ports: a port is not open). */
  FAILURE: 1,
  /** Bad usage, bad config, or the server cannot start as configured (privilege, port in use). */
  USAGE: 2,
  CHECKSUM_MISMATCH: 3,
  TRANSFER_FAILED: 4,
  /** check-ports: the control port cannot be reached (connect refused or timed out, no greeting). */
  CONTROL_UNREACHABLE: 4,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that carries the FTP reply code the client should get. Its message is safe to send. */
export class FtpReplyError extends Error {
  constructor(
    readonly replyCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'FtpReplyError';
  }
}

/** One validation problem, located by its path in the config (e.g. `pasvRange`, `accounts[0].user`). */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** Config that failed validation; `problems` has one entry per problem, each with its path. */
export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

/** An error the CLI turns into a one-line message and an exit code. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
  ) {
    super(message);
    this.name = 'ExitError';
  }
}

/** The message of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
