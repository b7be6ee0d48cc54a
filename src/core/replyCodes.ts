/**
 * Every FTP reply code the server or client uses, named once (RFC 959 §4.2,
 * RFC 2228 for 234/522/536, RFC 2428 for 229/522, RFC 3659 for 213).
 */
export const ReplyCode = {
  FILE_STATUS_OK_OPENING_DATA: 150,
  COMMAND_OK: 200,
  COMMAND_SUPERFLUOUS: 202,
  SYSTEM_STATUS: 211,
  FILE_STATUS: 213,
  HELP: 214,
  SYSTEM_TYPE: 215,
  SERVICE_READY: 220,
  CLOSING_CONTROL: 221,
  NO_TRANSFER_IN_PROGRESS: 225,
  TRANSFER_COMPLETE: 226,
  ENTERING_PASSIVE: 227,
  ENTERING_EXTENDED_PASSIVE: 229,
  LOGGED_IN: 230,
  SECURITY_EXCHANGE_OK: 234,
  FILE_ACTION_OK: 250,
  PATHNAME_CREATED: 257,
  NEED_PASSWORD: 331,
  PENDING_FURTHER_INFO: 350,
  SERVICE_NOT_AVAILABLE: 421,
  CANT_OPEN_DATA_CONNECTION: 425,
  TRANSFER_ABORTED: 426,
  FILE_UNAVAILABLE_TRANSIENT: 450,
  LOCAL_ERROR: 451,
  SYNTAX_ERROR: 500,
  SYNTAX_ERROR_IN_ARGUMENTS: 501,
  NOT_IMPLEMENTED: 502,
  BAD_SEQUENCE: 503,
  NOT_IMPLEMENTED_FOR_PARAMETER: 504,
  /** RFC 4217 §10: a data connection needs protection first (PROT P). Not EPSV's 522. */
  DATA_PROTECTION_REQUIRED: 522,
  /** RFC 2428 §3: EPSV for a network protocol the server does not support (names the ones it does). Not TLS's 522. */
  EPSV_PROTOCOL_NOT_SUPPORTED: 522,
  NOT_LOGGED_IN: 530,
  PROTECTION_LEVEL_NOT_SUPPORTED: 536,
  FILE_UNAVAILABLE: 550,
} as const;

export type ReplyCodeValue = (typeof ReplyCode)[keyof typeof ReplyCode];

/** Replies a client may retry after (RFC 959 class 4yz: transient negative completion). */
export function isTransientReply(code: number): boolean {
  return code >= 400 && code < 500;
}

/** Every HTTP status the HTTP(S) front end sends, named once (RFC 9110 §15; 429 is RFC 6585 §4). */
export const HttpStatus = {
  OK: 200,
  PARTIAL_CONTENT: 206,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  /** An image the catalog refuses (drifted, missing, unreadable). */
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  RANGE_NOT_SATISFIABLE: 416,
  TOO_MANY_REQUESTS: 429,
  REQUEST_HEADER_FIELDS_TOO_LARGE: 431,
  INTERNAL_SERVER_ERROR: 500,
  /** Starting, shutting down, or an image being verified again (with Retry-After). */
  SERVICE_UNAVAILABLE: 503,
} as const;
