/**
 * The seconds HTTP mode gives the runtime's per-connection client timer in each phase of a
 * request (docs/http.md, "Slow clients"). The runtime's HTTP server has one timer per client
 * connection, in whole seconds up to 255, swept every 4 seconds (a timeout of S seconds fires
 * after more than 4·ceil(S/4) − 4 and at most 4·ceil(S/4) seconds); bytes of a request head never
 * reset it, body bytes only at 16 KiB/s over the timeout, and each write of an answer does. Whatever
 * value it was last given stays until the next request's head is complete, so HTTP mode sets it:
 *
 * - while a request without a body waits for its server: `waitSeconds(response_timeout)`, long
 *   enough that the response timeout's 504 comes first (the runtime's own value, the idle timeout,
 *   would close the client silently if the server took longer);
 * - while a streamed answer is written: the listener's client idle timeout;
 * - from the end of an answer: `header_timeout`, which then bounds the wait for the next request
 *   and its head (trickled bytes do not extend it).
 */

/** The largest timeout the runtime's client timer takes (seconds; its field is a byte). */
export const CLIENT_TIMER_MAX_S = 255;
/** How often the runtime sweeps its timers (seconds). */
export const CLIENT_TIMER_TICK_S = 4;

/**
 * The shortest timeout worth giving the runtime: one of 4 s or less fires at the next sweep even if
 * bytes flowed all along (each write sets it to "the next sweep"), which cut a steadily streamed
 * answer and a 40 KiB/s upload at 4 s when measured; 5 s means more than 4 s of quiet.
 */
export const CLIENT_TIMER_MIN_S = CLIENT_TIMER_TICK_S + 1;

/** A duration as the runtime's timer takes it: whole seconds rounded up, from 5 to 255. */
export function timerSeconds(ms: number): number {
  return Math.min(CLIENT_TIMER_MAX_S, Math.max(CLIENT_TIMER_MIN_S, Math.ceil(ms / 1000)));
}

/**
 * The client timer while a request waits for its server: it fires no sooner than a second after
 * `responseTimeoutMs` (a sweep late), so the 504 is sent first; at most 255 s (a longer response
 * timeout is cut there by the runtime).
 */
export function waitSeconds(responseTimeoutMs: number): number {
  return timerSeconds(responseTimeoutMs + (CLIENT_TIMER_TICK_S + 1) * 1000);
}
