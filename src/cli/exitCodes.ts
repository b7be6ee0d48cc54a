/** Process exit codes, named once, and the error that carries one: the CLI is the only place that exits. */
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
