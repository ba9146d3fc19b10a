/**
 * The request/reply line protocol's vocabulary, shared by the socket layer that speaks it
 * (dataplane/control-socket.ts) and the control port that serves it (control/control-port.ts),
 * which may not import each other: one line in, one reply out, then the connection closes.
 */

/**
 * How a client broke the protocol: `binary` bytes, a line `too-long`, no line end in time
 * (`timeout`), or not one byte within the first-byte timeout (`silent`).
 */
export type JunkReason = 'binary' | 'too-long' | 'timeout' | 'silent';

export interface LineReply {
  text: string;
  /** Runs once the connection has closed (after the reply went out, or the client left). */
  after?: () => void;
}

/** What the line listener asks of the service, per connection. */
export interface LineService {
  /** A client connected ('' for Unix-socket clients). A string refuses it: sent, then closed. */
  admit(remoteAddress: string): string | null;
  /** The client's line, without its line end. Must not reject; the reply is sent, then the connection closes. */
  request(line: string, remoteAddress: string): Promise<LineReply>;
  /** The client broke the protocol; returns the reply to send before closing. */
  junk(reason: JunkReason, remoteAddress: string): string;
  /** A connection was refused because `maxConnections` were open and none could be given up. */
  busy?(remoteAddress: string): void;
  /** An idle connection was closed to make room for a new one. */
  evicted?(remoteAddress: string): void;
}
