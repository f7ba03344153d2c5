/**
 * The man page (`docs/switchboard.1`) and the bash completion
 * (`deploy/switchboard.bash`), both made from the verb table that `--help`
 * is made from, so that none of them can drift from the command line.
 * `deno task manual` writes both files; a test checks they are current.
 *
 * The man page is a list of sections ({@linkcode manSections}): a feature
 * that needs its own section (TLS, say) adds one entry there.
 *
 * @module
 */

import type { Service } from "../lib/service.ts";
import type { OptionSpec } from "./args.ts";
import { EXIT_STATUS } from "./exit_status.ts";
import type { Verb } from "./verb.ts";

/** What the generated files are made from. */
export interface ManualSource {
  /** The verbs (`loadVerbs()` of `main.ts`). */
  verbs: readonly Verb[];
  /** The service table (`SERVICES` of `handlers/mod.ts`). */
  services: readonly Service[];
  /** The program's version, for the page's footer. */
  version: string;
}

/** One section of the man page. */
export interface ManSection {
  /** Its heading, e.g. `EXIT STATUS`. */
  title: string;
  /** Its body in roff (man macros), already escaped. */
  roff: string;
}

// What each built-in service does, for the SERVICES section; a service
// without a line here is still listed, with its transports and port.
const SERVICE_SUMMARIES: Readonly<Record<string, string>> = {
  echo: "sends back what it receives (RFC 862)",
  chat: "a relay: forwards each message to every other member of a room",
  cmd: "runs a command, streams its output, returns its exit status",
  time: "the current time in the format the client asks for (also RFC 867, RFC 868)",
  file: "download, upload and list files under a served root",
  discard: "reads and drops whatever it receives (RFC 863)",
  chargen: "a stream of lines of printable characters (RFC 864; UDP only with allow_udp)",
  exec: "runs a program per connection, the socket as its stdin and stdout (inetd's job)",
  redirect: "relays each connection to a target host and port (xinetd redirect, rinetd)",
};

/**
 * Escapes text for roff: backslashes, hyphens (so options copy as `-`), a
 * `.` or `'` at the start of a line (which would be a request), and
 * characters beyond ASCII (as `\[uXXXX]`, which groff reads without preconv).
 *
 * @example
 * ```ts
 * import { roffEscape } from "./manual.ts";
 * if (roffEscape(".c -x \\n") !== "\\&.c \\-x \\en") throw new Error(roffEscape(".c -x \\n"));
 * ```
 *
 * @param text plain text, possibly several lines
 * @returns the text, safe to put in a man page
 */
export function roffEscape(text: string): string {
  return text.replaceAll("\\", "\\e").replaceAll("-", "\\-").replace(/^([.'])/gm, "\\&$1")
    .replace(
      /[^ -~\n\t]/gu,
      (char) => `\\[u${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}]`,
    );
}

/** A block shown as it is (no filling, no adjusting), such as a verb's help. */
function verbatim(text: string): string {
  return `.nf\n${roffEscape(text.replace(/\n+$/, ""))}\n.fi\n`;
}

function tagged(items: readonly [string, string][]): string {
  return items.map(([tag, text]) => `.TP\n.B ${roffEscape(tag)}\n${roffEscape(text)}\n`).join("");
}

/**
 * The sections of the man page, in order.
 * @param source the verb and service tables
 * @returns the sections
 */
export function manSections(source: ManualSource): ManSection[] {
  const { verbs, services } = source;
  const synopsis = verbs.map((verb) =>
    `\\fBswitchboard ${verb.name}\\fR ${roffEscape(verb.usage)}`.trimEnd()
  ).join("\n.br\n");
  const serviceRows = services.map((service) => {
    const summary = SERVICE_SUMMARIES[service.name] ?? `see docs/${service.name}.md`;
    return [
      service.name,
      `${service.transports.join(", ")}; default port ${service.defaultPort}. ${summary}.`,
    ] as [string, string];
  });
  return [
    {
      title: "NAME",
      roff: "switchboard \\- small network services side by side, declared in one TOML file\n",
    },
    { title: "SYNOPSIS", roff: `${synopsis}\n` },
    {
      title: "DESCRIPTION",
      roff: roffEscape(
        "switchboard runs a set of small network services side by side, declared in one TOML " +
          "file and operated under systemd: a modern, secure-by-default xinetd whose services " +
          "are built in. serve runs the daemon and check validates its configuration; the " +
          "other verbs are clients of the services. Every verb has --help (or: switchboard " +
          "help VERB). Text from the network is printed with terminal control characters " +
          "escaped when the output is a terminal, and byte for byte when it is piped.",
      ) + "\n",
    },
    {
      title: "COMMANDS",
      roff: verbs.map((verb) => `.SS ${verb.name}\n${verbatim(verb.help)}`).join(""),
    },
    {
      title: "SERVICES",
      roff: tagged(serviceRows) +
        ".PP\n" + roffEscape(
          "The wire protocol of each service is in docs/protocol.md of the source tree; " +
            "docs/ also has a page per service.",
        ) + "\n",
    },
    {
      title: "CONFIGURATION",
      roff: roffEscape(
        "The config is the file given with -c, else $SWITCHBOARD_CONFIG, else " +
          "./switchboard.toml, else /etc/switchboard/switchboard.toml, else an embedded " +
          "default on loopback only (echo, chat and time; file read-only on ./files when that " +
          "folder exists; cmd only when SWITCHBOARD_TOKEN is set). A -c or $SWITCHBOARD_CONFIG " +
          "file that is missing is an error (exit 78). A [daemon] table holds log_level, " +
          "log_format, shutdown_timeout and metrics; each [[listener]] table names a service " +
          "and an address to listen on, the common keys (name, transport, enabled, " +
          "max_connections, idle_timeout, allow, deny) and the service's own keys. " +
          "switchboard check reports every problem at once, each with file, line and key. " +
          "The example configuration that comes with switchboard lists every key with its " +
          "default.",
      ) + "\n",
    },
    {
      title: "ENVIRONMENT",
      roff: tagged([
        ["SWITCHBOARD_CONFIG", "the config file when -c is not given"],
        [
          "SWITCHBOARD_TOKEN",
          "the token cmd, get, put and ls send when --token is not given; for serve without " +
          "a config file, it enables the embedded cmd listener with that token",
        ],
        ["SWITCHBOARD_DEBUG", "set: an unexpected error shows where it happened"],
        [
          "SWITCHBOARD_UDP",
          "portable: UDP listeners use Deno's datagram API even where recvmmsg/sendmmsg " +
          "through FFI would work (the offline executable always does)",
        ],
        [
          "SWITCHBOARD_TCP",
          "portable: TCP writes always go by Deno's async write, never send(2) through FFI " +
          "at once (the offline executable always does)",
        ],
        [
          "SWITCHBOARD_SPAWN",
          "portable: cmd and exec start commands through setsid(1) with Deno's subprocess " +
          "API instead of posix_spawn through FFI (the offline executable always does)",
        ],
        ["NOTIFY_SOCKET, WATCHDOG_USEC", "set by systemd: sd_notify readiness and watchdog"],
        ["JOURNAL_STREAM", "set by systemd: log lines carry <N> priority prefixes"],
        ["TZ", "the daemon's time zone (the time service's default zone)"],
      ]),
    },
    {
      title: "SIGNALS",
      roff: tagged([
        [
          "SIGTERM, SIGINT",
          "serve stops accepting, lets work in flight finish within shutdown_timeout, then " +
          "exits 0; a second SIGINT forces exit (130)",
        ],
        [
          "SIGHUP",
          "serve reloads the config: listeners whose settings did not change keep running " +
          "with their connections; a bad new config is logged and the old one stays",
        ],
      ]),
    },
    {
      title: "FILES",
      roff: tagged([
        ["/etc/switchboard/switchboard.toml", "the system-wide config"],
        [
          "./switchboard.toml",
          "a config in the working directory, searched before the system-wide one",
        ],
      ]),
    },
    {
      title: "EXIT STATUS",
      roff: tagged(EXIT_STATUS.map((row) => [row.code, `${row.verbs}: ${row.meaning}`])),
    },
    {
      title: "SEE ALSO",
      roff: "\\fBsystemd.service\\fR(5), \\fBxinetd\\fR(8), \\fBnc\\fR(1), \\fBssh\\fR(1)\n",
    },
  ];
}

/**
 * Renders the man page.
 * @param source the verb and service tables and the version
 * @returns roff text for `man -l`
 */
export function renderManPage(source: ManualSource): string {
  const head = '.\\" Generated from the verb table by "deno task manual"; do not edit.\n' +
    `.TH SWITCHBOARD 1 "" "switchboard ${source.version}" "User Commands"\n`;
  return head + manSections(source).map((section) => `.SH ${section.title}\n${section.roff}`)
    .join("");
}

function optionWords(options: Readonly<Record<string, OptionSpec>>): string[] {
  const words = ["--help", "-h"];
  for (const [name, spec] of Object.entries(options)) {
    words.push(`--${name}`);
    if (spec.short !== undefined) words.push(`-${spec.short}`);
  }
  return words;
}

function valueWords(options: Readonly<Record<string, OptionSpec>>, file: boolean): string[] {
  const words: string[] = [];
  for (const [name, spec] of Object.entries(options)) {
    if (spec.type !== "string" || (spec.file === true) !== file) continue;
    words.push(`--${name}`);
    if (spec.short !== undefined) words.push(`-${spec.short}`);
  }
  return words;
}

/**
 * Renders the bash completion: verbs, each verb's options, files for file
 * options and operands, host names for ADDR.
 * @param verbs the verb table
 * @returns a script to source (or to install in bash-completion's directory)
 */
export function renderBashCompletion(verbs: readonly Verb[]): string {
  const names = verbs.map((verb) => verb.name);
  const cases = verbs.map((verb) => {
    const files = valueWords(verb.options, true);
    const values = valueWords(verb.options, false);
    const addr = verb.usage.startsWith("ADDR");
    const operands = (verb.fileOperands ?? []).join(" ");
    return [
      `    ${verb.name})`,
      `      options="${optionWords(verb.options).join(" ")}"`,
      `      file_options="${files.join(" ")}"`,
      `      value_options="${values.join(" ")}"`,
      `      file_operands="${operands}"`,
      `      addr=${addr ? 1 : 0}`,
      "      ;;",
    ].join("\n");
  }).join("\n");
  return `# bash completion for switchboard. Generated from the verb table by
# "deno task manual"; do not edit. Source it, or install it as
# /usr/share/bash-completion/completions/switchboard.
_switchboard() {
  local cur prev verb="" at=0 i word operand=-1 skip=0
  local options="" file_options="" value_options="" file_operands="" addr=0
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD - 1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if [[ "$word" != -* ]]; then
      verb="$word"
      at=$i
      break
    fi
  done
  if [[ -z "$verb" ]]; then
    COMPREPLY=($(compgen -W "${names.join(" ")} help --help --version" -- "$cur"))
    return
  fi
  case "$verb" in
    help)
      COMPREPLY=($(compgen -W "${names.join(" ")}" -- "$cur"))
      return
      ;;
${cases}
    *)
      return
      ;;
  esac
  # Which operand is being typed: words after the verb that are neither
  # options nor their values; after "--" (cmd's COMMAND) nothing is ours.
  for ((i = at + 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip)); then
      skip=0
    elif [[ "$word" == "--" ]]; then
      COMPREPLY=($(compgen -c -- "$cur"))
      return
    elif [[ " $file_options $value_options " == *" $word "* ]]; then
      skip=1
    elif [[ "$word" != -* ]]; then
      operand=$((operand + 1))
    fi
  done
  if [[ " $file_options " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  if [[ " $value_options " == *" $prev "* ]]; then
    COMPREPLY=()
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
    return
  fi
  operand=$((operand + 1))
  if ((addr)) && ((operand == 0)); then
    COMPREPLY=($(compgen -A hostname -- "$cur"))
  elif [[ " $file_operands " == *" $operand "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=()
  fi
}
complete -F _switchboard switchboard
`;
}

/** Where `deno task manual` writes the man page and the completion. */
export const MANUAL_FILES = {
  manPage: "docs/switchboard.1",
  bashCompletion: "deploy/switchboard.bash",
} as const;

if (import.meta.main) {
  const VERBS = await (await import("../main.ts")).loadVerbs();
  const { SERVICES } = await import("../handlers/mod.ts");
  const { VERSION } = await import("../lib/version.ts");
  const root = new URL("..", import.meta.url);
  const source = { verbs: VERBS, services: SERVICES, version: VERSION };
  await Deno.writeTextFile(new URL(MANUAL_FILES.manPage, root), renderManPage(source));
  await Deno.writeTextFile(new URL(MANUAL_FILES.bashCompletion, root), renderBashCompletion(VERBS));
  console.log(`Wrote ${MANUAL_FILES.manPage} and ${MANUAL_FILES.bashCompletion}`);
}
