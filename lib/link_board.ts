/**
 * The state of the daemon's links to outside systems that services keep
 * open (a message bus, say): up or down, how often they went down, what
 * they carried. The supervisor owns one board; services register their
 * links on it; metrics and systemd's `STATUS=` read it. It knows no service.
 *
 * @module
 */

/** A link as the outside sees it (metrics, status). */
export interface LinkStatus {
  /** What the link is for, e.g. `chat room "lobby"`; unique on a board. */
  readonly name: string;
  /** Where it goes, without credentials, e.g. `nats://10.0.0.5:4222`. */
  readonly target: string;
  /** Whether it is usable now. */
  readonly up: boolean;
  /** Times it went from up to down. */
  readonly downs: number;
  /** Attempts to bring it up that failed. */
  readonly failures: number;
  /** Messages sent over it. */
  readonly sent: number;
  /** Messages received over it. */
  readonly received: number;
}

/** One registered link; its owner updates it. */
export class Link implements LinkStatus {
  readonly name: string;
  readonly target: string;
  /** Messages sent over it (the owner counts). */
  sent = 0;
  /** Messages received over it (the owner counts). */
  received = 0;
  #up = false;
  #downs = 0;
  #failures = 0;
  #board: LinkBoard;

  /**
   * Use {@linkcode LinkBoard.add}.
   * @param board the board it is on
   * @param name what it is for
   * @param target where it goes, without credentials
   */
  constructor(board: LinkBoard, name: string, target: string) {
    this.#board = board;
    this.name = name;
    this.target = target;
  }

  /** Whether it is usable now. */
  get up(): boolean {
    return this.#up;
  }

  /** Times it went from up to down. */
  get downs(): number {
    return this.#downs;
  }

  /** Attempts to bring it up that failed. */
  get failures(): number {
    return this.#failures;
  }

  /** Records that the link is usable (again). */
  markUp(): void {
    if (this.#up) return;
    this.#up = true;
    this.#board.changed();
  }

  /** Records that the link was lost. */
  markDown(): void {
    if (!this.#up) return;
    this.#up = false;
    this.#downs++;
    this.#board.changed();
  }

  /** Records one failed attempt to bring the link up. */
  failedAttempt(): void {
    this.#failures++;
  }

  /** Takes the link off the board (its owner closed it). */
  remove(): void {
    this.#board.remove(this);
  }
}

/**
 * The links of one supervisor.
 *
 * @example
 * ```ts
 * import { LinkBoard } from "./link_board.ts";
 * const board = new LinkBoard();
 * const link = board.add("bus", "nats://127.0.0.1:4222");
 * if (board.summary() !== 'link down: bus (nats://127.0.0.1:4222)') throw new Error(board.summary());
 * link.markUp();
 * if (board.summary() !== undefined) throw new Error("still down");
 * link.remove();
 * ```
 */
export class LinkBoard {
  #links = new Set<Link>();
  #watchers = new Set<() => void>();

  /**
   * Registers a link, down until its owner says otherwise.
   * @param name what it is for (unique among the links of this board)
   * @param target where it goes, without credentials
   * @returns the link to update
   */
  add(name: string, target: string): Link {
    const link = new Link(this, name, target);
    this.#links.add(link);
    this.changed();
    return link;
  }

  /**
   * Takes a link off the board.
   * @param link a link of this board
   */
  remove(link: Link): void {
    if (this.#links.delete(link)) this.changed();
  }

  /** The registered links, in registration order. */
  get links(): readonly LinkStatus[] {
    return [...this.#links];
  }

  /**
   * One line naming the links that are down, for `STATUS=`.
   * @returns `link down: a (x), b (y)`, or undefined when every link is up
   */
  summary(): string | undefined {
    const down = [...this.#links].filter((link) => !link.up);
    if (down.length === 0) return undefined;
    const names = down.map((link) => `${link.name} (${link.target})`).join(", ");
    return `${down.length === 1 ? "link" : "links"} down: ${names}`;
  }

  /**
   * Calls `watcher` after each change of the set of links or of their states.
   * @param watcher the callback (must not throw)
   * @returns a function that stops the calls
   */
  watch(watcher: () => void): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /** Tells the watchers that something changed (called by links). */
  changed(): void {
    for (const watcher of this.#watchers) watcher();
  }
}
