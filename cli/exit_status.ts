/**
 * What each exit code of `switchboard` means, in one table: the man page's
 * EXIT STATUS section is made from it, and a test holds the README's table
 * to it.
 *
 * @module
 */

/** One exit code and when it happens. */
export interface ExitStatusRow {
  /** The code, or a rule such as `128+n`. */
  code: string;
  /** Which verbs give it (`every verb`, `serve`, `cmd`…). */
  verbs: string;
  /** When. */
  meaning: string;
}

/** Every exit code, in numeric order. */
export const EXIT_STATUS: readonly ExitStatusRow[] = [
  { code: "0", verbs: "every verb", meaning: "ok; serve: stopped cleanly" },
  {
    code: "1",
    verbs: "client verbs but cmd",
    meaning: "failed (cannot connect, no reply, refused, …); one-line reason on stderr",
  },
  {
    code: "64",
    verbs: "every verb",
    meaning: 'usage error: one line on stderr ending "(try --help)"',
  },
  { code: "71", verbs: "serve", meaning: "a listener or the metrics endpoint cannot bind" },
  {
    code: "78",
    verbs: "serve, check",
    meaning: "bad configuration (every problem with file, line and key)",
  },
  { code: "124", verbs: "cmd", meaning: "the remote command timed out" },
  { code: "128+n", verbs: "cmd", meaning: "the remote command was killed by signal n" },
  { code: "130", verbs: "serve", meaning: "a second SIGINT forced the daemon to exit" },
  {
    code: "141",
    verbs: "every verb",
    meaning: "standard output was closed (`| head`): stopped quietly, as after SIGPIPE",
  },
  {
    code: "255",
    verbs: "cmd",
    meaning: "cmd's own failure (cannot connect, unauthorized, refused, connection lost)",
  },
  { code: "other", verbs: "cmd", meaning: "the remote command's own exit code" },
];
