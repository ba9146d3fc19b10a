/**
 * The few socket operations the session logic needs. Bun's native TCP socket satisfies this
 * interface structurally, so the hot path calls it directly with no wrapper objects; tests can
 * pass fakes. Only the adapter files in this folder import runtime-specific APIs.
 */
export interface StreamSocket<Data> {
  data: Data;
  /** Bytes accepted now; fewer than given means backpressure, -1 means closed. */
  write(data: Uint8Array): number;
  /** Send FIN; keep reading. */
  shutdown(): void;
  /** Graceful close. */
  end(): void;
  /** Abortive close (RST). */
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
  /** Arms the idle timer in seconds (0 disables); the `timeout` event fires when it expires. */
  timeout(seconds: number): void;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}
