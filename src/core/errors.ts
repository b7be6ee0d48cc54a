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

/**
 * A request that cannot be carried out as asked (another runner holds the state directory, the
 * plan changed under a rollout): the message says why and what to do. Features throw it; the CLI
 * reports it in one line with the usage exit code. Features never choose exit codes themselves.
 */
export class RefusalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusalError';
  }
}

/** The message of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
