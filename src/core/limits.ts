/**
 * Hard limits and fixed tunables, named once. Configurable limits live in the
 * config schema; these are the ones an admin should never need to change.
 */
export const Limits = {
  /** Longest control line accepted; longer gets 500 and the session is cut (vsftpd uses 4 KiB too). */
  MAX_COMMAND_LINE_BYTES: 4096,
  /** Commands of a session kept for the transfer audit: a switch sends about ten before its RETR. */
  AUDIT_COMMANDS: 40,
  /** Characters of each command's argument kept in the audit. */
  AUDIT_ARGUMENT_CHARS: 120,
  /** Failed logins allowed per control connection before 421 and close. */
  MAX_FAILED_LOGINS: 3,
  /**
   * HTTP(S): failed Basic logins from one address are counted over this window; MAX_FAILED_LOGINS
   * of them lock the address out of Basic logins (429) for HTTP_LOGIN_LOCKOUT_MS.
   */
  HTTP_FAILED_LOGIN_WINDOW_MS: 60_000,
  /** HTTP(S): how long an address stays locked out after MAX_FAILED_LOGINS failures. */
  HTTP_LOGIN_LOCKOUT_MS: 60_000,
  /** HTTP(S): addresses with failed logins remembered at once (memory bound under a spray from many addresses). */
  HTTP_FAILED_LOGIN_ADDRESSES: 10_000,
  /** HTTP(S): the request line and headers must arrive within this long (Node's headersTimeout; also the TLS handshake limit). */
  HTTP_HEADERS_TIMEOUT_MS: 10_000,
  /** HTTP(S): the whole request must arrive within this long (Node's requestTimeout; a GET has no body). */
  HTTP_REQUEST_TIMEOUT_MS: 20_000,
  /** HTTP(S): how often Node checks connections against the two timeouts above. */
  HTTP_TIMEOUT_CHECK_MS: 1_000,
  /** HTTP(S): an idle keep-alive connection is closed after this long. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: 5_000,
  /** HTTP(S): request line plus headers larger than this get 431 (Node's maxHeaderSize; its default is 16 KiB). */
  HTTP_MAX_HEADER_BYTES: 8192,
  /** HTTP(S): most headers parsed per request (Node's maxHeadersCount); the rest are dropped. */
  HTTP_MAX_HEADERS: 64,
  /** HTTP(S): requests served on one keep-alive connection before it is closed. */
  HTTP_MAX_REQUESTS_PER_CONNECTION: 1000,
  /** HTTP(S): Retry-After (seconds) of the 503 for an image that is being verified again. */
  HTTP_RETRY_AFTER_S: 5,
  /** Delay before answering a failed login; slows brute force to one guess a second per session. */
  FAILED_LOGIN_DELAY_MS: 1000,
  /** Read size for the RETR data path: 1 MiB reads match vsftpd's throughput; 64 KiB reads cost 3.6x. */
  RETR_READ_BYTES: 1024 * 1024,
  /** Grace period for running transfers on SIGINT/SIGTERM before sessions are closed. */
  SHUTDOWN_GRACE_MS: 10_000,
  /** How long a passive port found held by another process is skipped before it is tried again. */
  FOREIGN_PORT_RECHECK_MS: 5_000,
  /** Lowest port allowed in a passive range: below it ports are privileged (RFC 6335 system ports). */
  MIN_UNPRIVILEGED_PORT: 1024,
  MAX_PORT: 65535,
  /** SSH host key fingerprints are SHA-256 digests (OpenSSH `SHA256:` format: 43 unpadded base64 characters). */
  HOST_KEY_FINGERPRINT_BYTES: 32,
  /** Lowest port active mode (PORT/EPRT) may connect to when enabled: refuses bounce to system services. */
  MIN_ACTIVE_MODE_PORT: 1024,
  /** scrypt cost parameters for stored password hashes (N=2^15, r=8, p=1: ~50 ms, 32 MiB). */
  SCRYPT_N: 32768,
  SCRYPT_R: 8,
  SCRYPT_P: 1,
  SCRYPT_KEY_BYTES: 32,
  SCRYPT_SALT_BYTES: 16,
  /** How long a login that passed scrypt is re-accepted by a cheap HMAC check. */
  VERIFIED_CREDENTIAL_CACHE_MS: 15 * 60 * 1000,
  /** Pull: batch size for writes and hashing; large writes keep syscalls and worker messages few. */
  PULL_BATCH_BYTES: 4 * 1024 * 1024,
  /** Pull: batches in flight between the socket, the disk and the hash worker (memory = this x batch). */
  PULL_BATCHES_IN_FLIGHT: 4,
  /** Pull: the data connection reads into one buffer this large (socket reads are at most this). */
  PULL_READ_BYTES: 256 * 1024,
  /** Pull: idle batches a process keeps for its next pull (the emulator's switches pull one after another). */
  PULL_SPARE_BATCHES: 16,
  /** Pull: bytes written between background fdatasync calls, so the final fsync has little left to flush. */
  PULL_SYNC_EVERY_BYTES: 64 * 1024 * 1024,
  /** Pull: default retries after a transient failure (421 425 426 450, socket errors, timeouts). */
  PULL_DEFAULT_RETRIES: 3,
  /** Pull: first backoff delay; doubles per consecutive failure, with jitter. */
  PULL_BACKOFF_BASE_MS: 500,
  /** Pull: the longest backoff delay. */
  PULL_BACKOFF_MAX_MS: 30_000,
  /** Pull: no progress on the control or data connection for this long is a timeout (basic-ftp watchdog). */
  PULL_TIMEOUT_MS: 30_000,
  /** Pull: resumes that made progress reset the retry count; this caps them so a flapping link still ends. */
  PULL_MAX_RESUMES: 100,
  /** Hashing a file (verify, catalog): read size per batch. */
  HASH_READ_BYTES: 4 * 1024 * 1024,
  /** check-ports: default limit for each step (connect, reply, data connection, transfer). */
  CHECK_PORTS_STEP_TIMEOUT_MS: 5_000,
  /**
   * check-ports: how long a SITE PROBE / PASV reply may take when the server is queueing it
   * behind another session's reservation (the server answers 425 after its pasvWait, 20 s by default).
   */
  CHECK_PORTS_BUSY_REPLY_MS: 65_000,
  /** check-ports: rounds of retries for ports that were busy with another session's transfer. */
  CHECK_PORTS_BUSY_RETRIES: 3,
  /** check-ports: pause before each retry round of busy ports. */
  CHECK_PORTS_BUSY_RETRY_DELAY_MS: 2_000,
  /** check-ports: NOOP round trips measured on the control connection (the minimum is reported). */
  CHECK_PORTS_RTT_SAMPLES: 3,
  /** Rollout schedule: longest single sleep while waiting for a window; the clock is read again after each (suspend, drift, setTimeout's 24.8-day cap). */
  SCHEDULE_SLEEP_CHUNK_MS: 60_000,
  /** Rollout cron windows: the longest duration a window may have. */
  MAX_WINDOW_DURATION_MS: 7 * 24 * 60 * 60 * 1000,
  /** Rollout cron windows: most occurrences scanned to find the latest opening before now (every minute for 7 days fits). */
  CRON_SCAN_MAX_OCCURRENCES: 20_000,
} as const;
