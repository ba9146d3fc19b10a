/**
 * Deadlines of (mostly) one length for many entries, on one timer: a group's connect timeouts.
 *
 * Entries are linked through fields of their own (DeadlineEntry), so adding and removing one
 * allocate nothing. With one length, entries fall due in the order they were added: adding is
 * an append and removing an unlink, both O(1). After the length changes to a shorter one (a
 * reload), a new entry may fall due before some already listed; it is placed by a walk back from
 * the tail over those only, so the list stays in due order.
 *
 * One timer is armed for the first entry. An entry that leaves before its deadline (a connect
 * that completed) leaves the timer as it is: when it fires, the due entries expire and it is
 * armed again for the new first one, if any. A steady flow of entries that leave in time
 * therefore arms about one timer per deadline length, instead of arming and clearing one each.
 */
import { clampTimerMs, type Clock, type TimerHandle } from './clock.ts';

/** The fields an entry carries for its list (one list per entry at a time). */
export interface DeadlineEntry<T> {
  /** When the entry falls due (ms, clock time); meaningful only while it is listed. */
  deadlineMs: number;
  deadlinePrev: T | null;
  deadlineNext: T | null;
}

export class DeadlineList<T extends DeadlineEntry<T>> {
  readonly #clock: Clock;
  /** Called for each entry whose deadline passed, after it has left the list. */
  readonly #expire: (entry: T) => void;
  #head: T | null = null;
  #tail: T | null = null;
  #size = 0;
  #timer: TimerHandle | null = null;
  #timerDueMs = 0;

  constructor(clock: Clock, expire: (entry: T) => void) {
    this.#clock = clock;
    this.#expire = expire;
  }

  /** Entries listed now. */
  get size(): number {
    return this.#size;
  }

  has(entry: T): boolean {
    return entry.deadlinePrev !== null || this.#head === entry;
  }

  /** Lists `entry` to fall due `ms` from now (again, if it was listed). */
  add(entry: T, ms: number): void {
    this.addAt(entry, this.#clock.now() + ms);
  }

  /** Lists `entry` to fall due at `due` (clock time, ms; again, if it was listed). */
  addAt(entry: T, due: number): void {
    if (this.has(entry)) this.remove(entry);
    entry.deadlineMs = due;
    // After the last entry due no later: the tail itself, unless the length was shortened.
    let after = this.#tail;
    while (after !== null && after.deadlineMs > due) after = after.deadlinePrev;
    const next = after === null ? this.#head : after.deadlineNext;
    entry.deadlinePrev = after;
    entry.deadlineNext = next;
    if (after === null) this.#head = entry;
    else after.deadlineNext = entry;
    if (next === null) this.#tail = entry;
    else next.deadlinePrev = entry;
    this.#size++;
    if (this.#timer === null || due < this.#timerDueMs) this.#arm(due);
  }

  /** Takes `entry` out of the list; nothing if it is not listed. The timer is left armed. */
  remove(entry: T): void {
    const prev = entry.deadlinePrev;
    if (prev === null && this.#head !== entry) return;
    const next = entry.deadlineNext;
    if (prev === null) this.#head = next;
    else prev.deadlineNext = next;
    if (next === null) this.#tail = prev;
    else next.deadlinePrev = prev;
    entry.deadlinePrev = null;
    entry.deadlineNext = null;
    this.#size--;
  }

  /** Disarms the timer (shutdown); listed entries stay listed and expire no more. */
  stop(): void {
    this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  #arm(dueMs: number): void {
    this.#clock.clearTimer(this.#timer);
    this.#timerDueMs = dueMs;
    // The list is the timer's argument: no closure per arming.
    this.#timer = this.#clock.setTimeout(fire, clampTimerMs(dueMs - this.#clock.now()), this);
  }

  /** The timer fired: every entry due by now expires, then the timer follows the new first one. */
  fired(): void {
    this.#timer = null;
    const now = this.#clock.now();
    for (let e = this.#head; e !== null && e.deadlineMs <= now; e = this.#head) {
      this.remove(e);
      this.#expire(e); // may add entries again: they fall due later than now
    }
    // An expiry that listed an entry again armed the timer for that one: the first may be earlier.
    const first = this.#head;
    if (first !== null && (this.#timer === null || first.deadlineMs < this.#timerDueMs)) this.#arm(first.deadlineMs);
  }
}

function fire(list: { fired(): void }): void {
  list.fired();
}

/**
 * For an entry that moves between lists of different lengths (a connection's phases): lists it on
 * `to`, due `ms` from now, after taking it off `from`, the list it was on (if another). Returns
 * `to`, the entry's list from now on.
 */
export function relist<T extends DeadlineEntry<T>>(entry: T, from: DeadlineList<T> | null, to: DeadlineList<T>, ms: number): DeadlineList<T> {
  if (from !== null && from !== to) from.remove(entry);
  to.add(entry, ms);
  return to;
}
