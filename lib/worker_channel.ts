/**
 * The channel between the supervisor and one worker process: JSON, one
 * message a line, over the worker's stdin (supervisor to worker) and stdout
 * (worker to supervisor). A request carries an `id` and is answered by a
 * message with `re` set to it; a message without `id` needs no answer.
 * Messages sent in one turn of the event loop go out in one write.
 *
 * @module
 */

/** One message: an object with an `op` (requests, notices) or `re` (answers). */
export type ChannelMessage = Record<string, unknown>;

/** Answers a request: the fields of the answer. */
export type RequestHandler = (
  message: ChannelMessage,
) => ChannelMessage | Promise<ChannelMessage> | void;

const encoder = new TextEncoder();

/** A JSON-lines channel over a pair of byte streams. */
export class LineChannel {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #queue: string[] = [];
  #pending = new Map<
    number,
    { resolve: (m: ChannelMessage) => void; reject: (e: Error) => void }
  >();
  #nextId = 1;
  #closed = false;
  #handler: RequestHandler;
  /** Resolves when the other side's stream ends (it exited or closed it). */
  readonly done: Promise<void>;

  /**
   * Starts reading `readable` at once.
   * @param readable what the other side writes
   * @param writable where to write to it
   * @param handler answers requests and takes notices
   */
  constructor(
    readable: ReadableStream<Uint8Array>,
    writable: WritableStream<Uint8Array>,
    handler: RequestHandler,
  ) {
    this.#writer = writable.getWriter();
    this.#writer.closed.catch(() => {});
    this.#handler = handler;
    this.done = this.#read(readable);
  }

  /** Whether the other side has gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends a message that needs no answer (dropped once the channel is closed).
   * @param message the message
   */
  send(message: ChannelMessage): void {
    if (this.#closed) return;
    this.#queue.push(JSON.stringify(message));
    if (this.#queue.length === 1) queueMicrotask(() => this.#flush());
  }

  /**
   * Sends a request and waits for its answer.
   * @param message the request (its `id` is set here)
   * @returns the answer
   * @throws {Error} when the channel closes first
   */
  request(message: ChannelMessage): Promise<ChannelMessage> {
    if (this.#closed) return Promise.reject(new Error("The other process is gone"));
    const id = this.#nextId++;
    return new Promise<ChannelMessage>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.send({ ...message, id });
    });
  }

  /** Closes the writing side (the other side reads end of stream). */
  async close(): Promise<void> {
    this.#flush();
    try {
      await this.#writer.close();
    } catch {
      // Already gone.
    }
  }

  #flush(): void {
    if (this.#queue.length === 0) return;
    const text = this.#queue.join("\n") + "\n";
    this.#queue.length = 0;
    if (this.#closed) return;
    this.#writer.write(encoder.encode(text)).catch(() => this.#end());
  }

  async #read(readable: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of readable) {
        pending += decoder.decode(chunk, { stream: true });
        let newline = pending.indexOf("\n");
        while (newline >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          this.#dispatch(line);
          newline = pending.indexOf("\n");
        }
      }
    } catch {
      // The other side is gone.
    } finally {
      this.#end();
    }
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    for (const { reject } of this.#pending.values()) reject(new Error("The other process is gone"));
    this.#pending.clear();
  }

  #dispatch(line: string): void {
    let message: ChannelMessage;
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null) return;
    if (typeof message.re === "number") {
      const waiter = this.#pending.get(message.re);
      this.#pending.delete(message.re);
      waiter?.resolve(message);
      return;
    }
    const id = message.id;
    let answer;
    try {
      answer = this.#handler(message);
    } catch (error) {
      answer = { ok: false, error: String(error) };
    }
    if (typeof id !== "number") return;
    Promise.resolve(answer).then(
      (fields) => this.send({ ...fields, re: id }),
      (error) => this.send({ ok: false, error: String(error), re: id }),
    );
  }
}
