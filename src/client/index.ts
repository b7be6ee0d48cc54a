/** The pull client: pulls an image the way a switch does, over basic-ftp, and proves it. */
export { pull, Puller, PullUsageError, type PullEvents, type PullOptions, type PullOutcome, type PullProgress, type PullResult } from './pull.js';
export { parseFtpUrl, ANONYMOUS_USER, type FtpTarget } from './url.js';
export { backoffDelay, classifyFailure, type BackoffPolicy, type Failure, type FailureKind } from './retry.js';
export type { PassiveMode } from './ftp.js';
