/**
 * The bench's wire protocol, shared by the backend, the load generator and the idle holders.
 * Messages are fixed-size so that neither side has to parse anything: a request is
 * REQUEST_SIZE bytes and a response RESPONSE_SIZE bytes, counted off the byte stream whatever
 * the segmentation. The first byte a connection sends tells the backend what to do with it, so
 * one backend port (and one balancer configuration) serves every scenario.
 */
export const REQUEST_SIZE = 64;
export const RESPONSE_SIZE = 64;

/** Modes, as the first byte of a connection's first request. */
export const MODE_KEEPALIVE = 0x4b; // 'K': a response per request, for as long as the client likes
export const MODE_CLOSE = 0x43; // 'C': one response, then the backend closes (HTTP/1.0 style)
export const MODE_BULK = 0x42; // 'B': the backend streams until the client goes away
export const MODE_IDLE = 0x49; // 'I': acknowledged with one byte, then held; nothing more is sent

/** The backend's one-byte answer to an idle connection: it has arrived end to end. */
export const IDLE_ACK = new Uint8Array([0x69]); // 'i'

/** A request of the given mode: the mode byte, then filler. */
export function request(mode: number): Uint8Array {
  const r = new Uint8Array(REQUEST_SIZE).fill(0x2e); // '.'
  r[0] = mode;
  r[REQUEST_SIZE - 1] = 0x0a;
  return r;
}

/** Bytes the backend writes per call while streaming a bulk transfer. */
export const BULK_CHUNK = 64 * 1024;
/** A bulk stream ends by itself after this many bytes even if its client never leaves. */
export const BULK_MAX_BYTES = 256 * 1024 ** 3;
