/**
 * An insertion-ordered set with O(1) push, delete (by value) and shift (the oldest): a doubly
 * linked list indexed by a Map. Used where the oldest of something must be given up first
 * without a scan (open TLS gates: docs/hardening.md; per-source rates). Where the values are our
 * own objects and one list per kind is enough, links on the objects themselves avoid the node
 * and the Map entry (Session.quietPrev/quietNext, core/deadline-list.ts).
 */
interface Node<T> {
  readonly value: T;
  prev: Node<T> | null;
  next: Node<T> | null;
}

export class OrderedList<T> {
  readonly #nodes = new Map<T, Node<T>>();
  #head: Node<T> | null = null;
  #tail: Node<T> | null = null;

  get size(): number {
    return this.#nodes.size;
  }

  has(value: T): boolean {
    return this.#nodes.has(value);
  }

  /** Appends `value` as the newest (a value already present keeps its place). */
  push(value: T): void {
    if (this.#nodes.has(value)) return;
    const node: Node<T> = { value, prev: this.#tail, next: null };
    if (this.#tail === null) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    this.#nodes.set(value, node);
  }

  /** Removes `value`; false if it was not there. */
  delete(value: T): boolean {
    const node = this.#nodes.get(value);
    if (node === undefined) return false;
    this.#nodes.delete(value);
    if (node.prev === null) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === null) this.#tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = null;
    return true;
  }

  /** The oldest value, without removing it. */
  first(): T | undefined {
    return this.#head?.value;
  }

  /** Removes and returns the oldest value. */
  shift(): T | undefined {
    const head = this.#head;
    if (head === null) return undefined;
    this.delete(head.value);
    return head.value;
  }
}
