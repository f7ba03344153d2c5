/**
 * The one way into the C library through Deno's FFI: every module that
 * calls libc (UDP batches, direct TCP sends, fcntl, posix_spawn and epoll)
 * opens its own symbol set here, so all of them try the same library names
 * (glibc and musl), never trigger a permission prompt, and step aside in a
 * runtime without working FFI — the offline executable, whose `Deno.dlopen`
 * shim over bun has neither pointer views nor non-blocking calls. Each
 * caller still decides its own fallback (and its own `SWITCHBOARD_*`
 * switch); this module only says whether, and why not.
 *
 * Lifetime: a {@linkcode SharedLibc} opens its library on the first
 * {@linkcode SharedLibc.acquire} and closes it with the last
 * {@linkcode SharedLibc.release}. Deno's test sanitizers count an open
 * library as a resource, so a library is either acquired while the module
 * loads and kept for the process (before any test starts), or acquired and
 * released around its use.
 *
 * @module
 */

/** The C library's names on Linux: glibc, then musl (x86_64, aarch64), then the generic link. */
export const LIBC_NAMES: readonly string[] = [
  "libc.so.6",
  "libc.musl-x86_64.so.1",
  "libc.musl-aarch64.so.1",
  "libc.so",
];

// Bound in every set: errno and its text.
const ERRNO_SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

/** A caller's symbols plus the errno ones every set gets. */
export type WithErrno<S extends Deno.ForeignLibraryInterface> = S & typeof ERRNO_SYMBOLS;

/** An opened C library: the caller's functions, and errno of the calling (JS) thread. */
export interface Libc<S extends Deno.ForeignLibraryInterface> {
  /** The bound functions. */
  readonly symbols: Deno.DynamicLibrary<WithErrno<S>>["symbols"];
  /** `errno` as the last failing call on this thread left it. */
  errno(): number;
  /** strerror(3) of `code`, or `error <code>` when it cannot be read. */
  strerror(code: number): string;
}

/**
 * Why this runtime cannot call libc through FFI, or undefined when it can.
 * Never prompts: without FFI permission already granted it says so.
 * @param pointers whether the caller needs pointer views and non-blocking
 *   calls, which the offline executable's `Deno.dlopen` shim (over bun:ffi)
 *   lacks; plain calls (fcntl) work there @default {true}
 * @returns the reason (`no Deno FFI`, `no FFI permission`, …) or undefined
 */
export function ffiUnavailable(pointers = true): string | undefined {
  const d = Deno as unknown as Record<string, unknown>;
  if (pointers && (globalThis as { Bun?: unknown }).Bun !== undefined) {
    return "this runtime's FFI has no non-blocking calls";
  }
  if (typeof d.dlopen !== "function") return "no Deno FFI";
  if (
    pointers &&
    (typeof d.UnsafePointer !== "function" || typeof d.UnsafePointerView !== "function")
  ) {
    return "no Deno FFI";
  }
  if (Deno.build.os !== "linux") return `no libc names for ${Deno.build.os}`;
  // A runtime without Deno's permissions (the bun adapter) asks nobody.
  if (typeof (d.permissions as Deno.Permissions | undefined)?.querySync !== "function") {
    return undefined;
  }
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      return "no FFI permission";
    }
  } catch {
    return "no FFI permission";
  }
  return undefined;
}

/**
 * An Error for a libc failure, of the class Deno uses for the same errno.
 * @param code the errno
 * @param text its strerror text
 * @returns the error, message `<text> (os error <code>)`
 */
export function osError(code: number, text: string): Error {
  const message = `${text} (os error ${code})`;
  switch (code) {
    case 9:
      return new Deno.errors.BadResource(message);
    case 1:
    case 13:
      return new Deno.errors.PermissionDenied(message);
    case 98:
      return new Deno.errors.AddrInUse(message);
    case 99:
      return new Deno.errors.AddrNotAvailable(message);
    case 101:
    case 113:
      return new Deno.errors.NetworkUnreachable(message);
    case 111:
      return new Deno.errors.ConnectionRefused(message);
    default:
      return new Error(message);
  }
}

/**
 * One caller's symbol set in libc, opened while someone uses it
 * (reference-counted).
 */
export class SharedLibc<S extends Deno.ForeignLibraryInterface> {
  readonly #symbols: WithErrno<S>;
  readonly #names: readonly string[];
  readonly #pointers: boolean;
  #library?: Deno.DynamicLibrary<WithErrno<S>>;
  #libc?: Libc<S>;
  #users = 0;

  /**
   * @param symbols the functions this caller binds (errno and strerror are added)
   * @param options `names`: the libraries to try, in order (a caller whose
   *   struct layouts are glibc's narrows it) @default {LIBC_NAMES};
   *   `pointers`: false when plain calls suffice (no pointer views, no
   *   non-blocking calls: then the offline executable can open it too, and
   *   `errno` reads 0 there) @default {true}
   */
  constructor(symbols: S, options: { names?: readonly string[]; pointers?: boolean } = {}) {
    this.#symbols = { ...symbols, ...ERRNO_SYMBOLS };
    this.#names = options.names ?? LIBC_NAMES;
    this.#pointers = options.pointers ?? true;
  }

  /**
   * Opens the library (first user) or counts one more user; every success
   * needs one {@linkcode SharedLibc.release}.
   * @returns the library, or why it cannot be opened (no FFI, no
   *   permission, no libc by any of {@linkcode LIBC_NAMES}, a missing
   *   symbol). Never throws.
   */
  acquire(): Libc<S> | string {
    if (this.#libc !== undefined) {
      this.#users++;
      return this.#libc;
    }
    const reason = ffiUnavailable(this.#pointers);
    if (reason !== undefined) return reason;
    let lastError: unknown;
    for (const name of this.#names) {
      let library: Deno.DynamicLibrary<WithErrno<S>>;
      try {
        library = Deno.dlopen(name, this.#symbols);
      } catch (error) {
        // Not there, or a symbol is missing (an old or a different libc).
        lastError = error;
        continue;
      }
      const symbols = library.symbols as unknown as Deno.DynamicLibrary<typeof ERRNO_SYMBOLS>[
        "symbols"
      ];
      let errno = (): number => 0;
      if (typeof Deno.UnsafePointerView === "function") {
        const where = symbols.__errno_location();
        if (where === null) {
          library.close();
          return "libc gives no errno location";
        }
        const view = new Deno.UnsafePointerView(where);
        errno = () => view.getInt32();
      }
      this.#library = library;
      this.#users = 1;
      this.#libc = {
        symbols: library.symbols,
        errno,
        strerror: (code) => {
          try {
            return new Deno.UnsafePointerView(symbols.strerror(code)!).getCString();
          } catch {
            return `error ${code}`;
          }
        },
      };
      return this.#libc;
    }
    return `cannot load libc: ${lastError instanceof Error ? lastError.message : lastError}`;
  }

  /** Ends one {@linkcode SharedLibc.acquire}; the last one closes the library. */
  release(): void {
    if (this.#library === undefined || --this.#users > 0) return;
    this.#library.close();
    this.#library = undefined;
    this.#libc = undefined;
  }
}
