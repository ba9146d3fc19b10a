/**
 * A binary min-heap of entries by due time, for schedules with many timers and one real timer
 * (health checks of a thousand servers, connection age limits). The earliest entry is read in
 * O(1); adding, removing and rescheduling are O(log n). Entries carry their own heap position,
 * so removal needs no search, and nothing is allocated per operation.
 */

export interface HeapEntry {
  dueMs: number;
  /** Position in the heap, -1 when not in it. Managed by the heap. */
  heapIndex: number;
}

export class TimerHeap<T extends HeapEntry> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** The entry due first, or undefined. */
  peek(): T | undefined {
    return this.#items[0];
  }

  has(e: T): boolean {
    return e.heapIndex >= 0 && this.#items[e.heapIndex] === e;
  }

  /** Adds `e` due at `dueMs`, or moves it there if it is already in the heap. */
  schedule(e: T, dueMs: number): void {
    if (this.has(e)) {
      const earlier = dueMs < e.dueMs;
      e.dueMs = dueMs;
      if (earlier) this.#up(e.heapIndex);
      else this.#down(e.heapIndex);
      return;
    }
    e.dueMs = dueMs;
    e.heapIndex = this.#items.length;
    this.#items.push(e);
    this.#up(e.heapIndex);
  }

  /** Removes and returns the earliest entry if it is due at `nowMs`. */
  popDue(nowMs: number): T | undefined {
    const top = this.#items[0];
    if (top === undefined || top.dueMs > nowMs) return undefined;
    this.remove(top);
    return top;
  }

  remove(e: T): void {
    if (!this.has(e)) return;
    const i = e.heapIndex;
    const last = this.#items.pop()!;
    e.heapIndex = -1;
    if (last === e) return;
    this.#items[i] = last;
    last.heapIndex = i;
    this.#up(i);
    this.#down(last.heapIndex);
  }

  clear(): void {
    for (const e of this.#items) e.heapIndex = -1;
    this.#items.length = 0;
  }

  #up(i: number): void {
    const items = this.#items;
    const e = items[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p]!;
      if (parent.dueMs <= e.dueMs) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = e;
    e.heapIndex = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const e = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && items[r]!.dueMs < items[l]!.dueMs ? r : l;
      const child = items[c]!;
      if (child.dueMs >= e.dueMs) break;
      items[i] = child;
      child.heapIndex = i;
      i = c;
    }
    items[i] = e;
    e.heapIndex = i;
  }
}
