/**
 * A fixed-capacity ring buffer: the last N items, oldest dropped. `push` is O(1) and allocates
 * nothing once the buffer is full; reading copies (for reports, never per event).
 */
export class Ring<T> {
  readonly capacity: number;
  #items: (T | undefined)[] = [];
  #next = 0;
  /** Items ever pushed. */
  total = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  push(item: T): void {
    if (this.#items.length < this.capacity) this.#items.push(item);
    else this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    this.total++;
  }

  get size(): number {
    return this.#items.length;
  }

  /** The newest item, if any. */
  last(): T | undefined {
    return this.#items.length === 0 ? undefined : this.#items[(this.#next + this.capacity - 1) % this.capacity];
  }

  /** Oldest first. */
  toArray(): T[] {
    if (this.#items.length < this.capacity) return this.#items.slice() as T[];
    return [...this.#items.slice(this.#next), ...this.#items.slice(0, this.#next)] as T[];
  }
}
