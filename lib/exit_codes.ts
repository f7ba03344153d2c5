/**
 * The daemon's and clients' exit codes (sysexits.h where one fits).
 *
 * @module
 */

/** Exit codes other programs (systemd, scripts) rely on. */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** A client verb failed; the reason is on stderr. */
  Failure: 1,
  /** Bad command line (EX_USAGE). */
  Usage: 64,
  /** A listener cannot bind (EX_OSERR). */
  OsError: 71,
  /** Bad configuration (EX_CONFIG). */
  Config: 78,
  /** A second SIGINT forced the daemon to exit (128 + SIGINT). */
  Interrupted: 130,
  /** A client verb's standard output was closed (`| head`): 128 + SIGPIPE, as coreutils. */
  OutputClosed: 141,
} as const;

/** One of {@linkcode ExitCode}'s values. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];
