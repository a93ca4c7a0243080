// One Redis protocol connection's pipeline: bytes in, commands dispatched as they parse, replies
// out strictly in request order (whenever each command's promise settles), and the two bounds
// that stop it reading a client that does not read its replies.
import type { Socket } from "bun";
import { respPendingCommandsMax, respReplyBufferBytesMax } from "../limits.ts";
import { defaultParserLimits, encodeReply, ReplyWriter, RespParser, type ParserLimits } from "./codec.ts";
import { commandName } from "./names.ts";
import type { Reply, RespCommands, RespSession } from "./types.ts";

/**
 * How long a TLS client has from connecting to finishing its handshake. Until then it holds a
 * socket and a maxclients slot without being anyone: one that never finishes is dropped, so
 * half-open connections cannot pile up. Bun's socket timeout counts in whole seconds.
 */
export const respHandshakeTimeoutSeconds = 10;

/** Per-connection bounds beyond the parser's; tests shrink them. */
export interface ConnectionLimits extends ParserLimits {
  replyBufferBytesMax: number;
  pendingCommandsMax: number;
  handshakeTimeoutSeconds: number;
}

export const defaultConnectionLimits: Readonly<ConnectionLimits> = Object.freeze({
  ...defaultParserLimits,
  replyBufferBytesMax: respReplyBufferBytesMax,
  pendingCommandsMax: respPendingCommandsMax,
  handshakeTimeoutSeconds: respHandshakeTimeoutSeconds,
});

/** What every connection of one server shares. */
export interface ConnectionContext {
  readonly commands: RespCommands;
  readonly limits: Readonly<ConnectionLimits>;
  /** The server is shutting down: nothing more is read. */
  stopping(): boolean;
  /** One command answered: its name (lower case) and reply (for the metrics). */
  answered(command: string, reply: Reply): void;
  /** A protocol error closes this connection (for the metrics). */
  protocolError(): void;
  onInternalError(command: string, err: unknown): void;
}

/** One command waiting for its reply, in request order. */
interface Slot {
  reply: Reply | null;
  /** The protocol in force when the command ran: a HELLO later in the pipeline does not change this reply's shape. */
  protocol: 2 | 3;
}

const internalError: Reply = { kind: "error", text: "ERR internal error" };
export class Connection {
  /** Null once the socket closed (or was ended by us): pending replies are then dropped. */
  socket: Socket<Connection> | null;
  private readonly parser: RespParser;
  /** Replies not yet encoded, oldest first; head is the index of the oldest. */
  private queue: Slot[] = [];
  private head = 0;
  private readonly out = new ReplyWriter();
  /** Bytes the socket refused (its buffer was full), written on drain before anything else. */
  private unsent: Uint8Array | null = null;
  /** Reading is stopped (backpressure, closing). */
  paused = false;
  /** QUIT, a protocol error or shutdown: no more commands; close once the last reply is out. */
  closing = false;
  private flushScheduled = false;

  constructor(
    socket: Socket<Connection>,
    readonly session: RespSession,
    private readonly ctx: ConnectionContext,
  ) {
    this.socket = socket;
    this.parser = new RespParser(ctx.limits);
  }

  /** Commands dispatched and not yet answered. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Encoded reply bytes the socket has not taken yet. */
  get replyBytes(): number {
    return this.out.length + (this.unsent?.length ?? 0);
  }

  /** Unparsed input held. */
  get inputBytes(): number {
    return this.parser.bufferedBytes;
  }

  /** Nothing dispatched is left unanswered or unwritten. */
  get idle(): boolean {
    return this.socket === null || (this.head === this.queue.length && this.unsent === null);
  }

  /** Bytes arrived. Bun hands every data callback a buffer of its own (never reused), so the parser may keep views of it. */
  received(chunk: Uint8Array): void {
    if (this.socket === null || this.closing) return;
    this.parser.feed(chunk);
    this.pump();
  }

  /** The socket takes more: what it refused first, then whatever is ready. */
  drained(): void {
    const socket = this.socket;
    if (socket === null) return;
    if (this.unsent !== null) {
      const n = socket.write(this.unsent);
      if (n < this.unsent.length) {
        this.unsent = this.unsent.subarray(Math.max(0, n));
        return;
      }
      this.unsent = null;
    }
    this.pump();
  }

  /** The socket is gone: replies still pending are dropped when they come; nothing more is read or dispatched. */
  closed(): void {
    this.socket = null;
    this.closing = true;
  }

  /** Shutdown: no more commands; the connection ends once what was dispatched is answered. */
  finish(): void {
    this.closing = true;
    this.setPaused();
    this.flush();
  }

  private blocked(): boolean {
    return this.queue.length - this.head >= this.ctx.limits.pendingCommandsMax || this.replyBytes >= this.ctx.limits.replyBufferBytesMax;
  }

  private setPaused(): void {
    const want = this.closing || this.ctx.stopping() || this.blocked();
    if (want === this.paused || this.socket === null) return;
    this.paused = want;
    if (want) this.socket.pause();
    else this.socket.resume();
  }

  /**
   * Dispatches what was received, writes the replies, and repeats while the reply bound was what
   * stopped dispatching and the socket took everything (no more input or drain event may come to
   * restart it); then pauses or resumes reading to match.
   */
  private pump(): void {
    if (this.socket === null) return;
    for (;;) {
      if (!this.closing) this.process();
      const full = this.out.length >= this.ctx.limits.replyBufferBytesMax;
      this.flush();
      if (!full || this.unsent !== null || this.socket === null || this.closing) break;
    }
    // The socket refused part of the output: go on dispatching up to the reply bound meanwhile
    // (drain writes it all), so a client that stopped reading is seen to be over the bound and
    // paused, rather than left unread below it.
    if (this.unsent !== null && this.socket !== null && !this.closing) this.process();
    this.setPaused();
  }

  /** Dispatches the complete commands received, as far as the connection's bounds allow. */
  private process(): void {
    while (!this.closing && !this.blocked()) {
      const args = this.parser.next();
      if (args === null) break;
      this.dispatch(args);
    }
    const failure = this.parser.failure;
    if (failure !== null && !this.closing) {
      // Answered after every earlier command's reply, then the connection closes (as Redis does).
      this.closing = true;
      this.ctx.protocolError();
      this.answer({ kind: "error", text: `ERR ${failure}` }, this.session.protocol);
    }
  }

  /** A reply known now: encoded at once when nothing before it waits, else queued behind. */
  private answer(reply: Reply, protocol: 2 | 3): void {
    if (this.head === this.queue.length) encodeReply(this.out, reply, protocol);
    else this.queue.push({ reply, protocol });
  }

  private dispatch(args: Uint8Array[]): void {
    const command = commandName(args[0]);
    // Queued (with the protocol in force) only if the reply is not known at once.
    const slot: Slot = { reply: null, protocol: 2 };
    let r: Reply | null;
    try {
      r = this.ctx.commands.start(
        this.session,
        args,
        (reply) => this.settled(slot, command, reply),
        (err) => {
          this.ctx.onInternalError(command, err);
          this.settled(slot, command, internalError);
        },
      );
    } catch (err) {
      this.ctx.onInternalError(command, err);
      r = internalError;
    }
    if (this.session.closeAfterReply) this.closing = true;
    // After start: HELLO's own reply is in the protocol it switches to, as in Redis.
    const protocol = this.session.protocol;
    if (r !== null) {
      this.ctx.answered(command, r);
      this.answer(r, protocol);
      return;
    }
    slot.protocol = protocol;
    this.queue.push(slot);
  }

  private settled(slot: Slot, command: string, reply: Reply): void {
    slot.reply = reply;
    this.ctx.answered(command, reply);
    if (this.session.closeAfterReply) this.closing = true;
    this.encodeAnswered();
    this.scheduleFlush();
  }

  /** Encodes the answered replies at the head of the queue, in order. */
  private encodeAnswered(): void {
    const q = this.queue;
    while (this.head < q.length) {
      const slot = q[this.head]!;
      if (slot.reply === null) break;
      q[this.head] = undefined as unknown as Slot;
      this.head++;
      if (this.socket !== null) encodeReply(this.out, slot.reply, slot.protocol);
    }
    if (this.head === q.length) {
      q.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > q.length) {
      q.splice(0, this.head);
      this.head = 0;
    }
  }

  /** One write for every reply answered in this burst (a group commit answers many at once). */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.pump();
    });
  }

  /** Writes what is encoded, unless the socket still has refused bytes (then drain writes it); ends a closing connection once all is out. */
  private flush(): void {
    const socket = this.socket;
    if (socket === null) return;
    const length = this.out.length;
    if (this.unsent === null && length > 0) {
      const raw = this.out.raw();
      const n = socket.write(raw, 0, length);
      if (n < length) this.unsent = raw.slice(Math.max(0, n), length);
      this.out.clear();
    }
    if (this.closing && this.unsent === null && this.head === this.queue.length) {
      this.socket = null;
      socket.end();
    }
  }
}
