/**
 * The cluster's connection to Redis (or Valkey), through Bun's built-in client: one connection
 * for commands and one subscribed to the cluster's channel (a subscribed connection takes no
 * other commands). It owns reconnection: Bun's own retries are off, and after a failure both
 * connections are dropped and made again after a backoff armed on the injected Clock, so that
 * "up" always means both work. Commands while down are refused at once (no offline queue: the
 * caller keeps its changes for the resync). Loaded only when the config has a `cluster` section.
 */
import { RedisClient } from 'bun';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { reconnectDelayMs } from '../core/cluster/changes.ts';
import { FulcrumError } from '../core/errors.ts';

export interface RedisLinkEvents {
  /** Both connections work and the channel is subscribed (first time, or after a failure). */
  up(): void;
  /** A working link broke (or the first connect failed): called once per outage. */
  down(why: string): void;
  /** A message on the channel. */
  message(text: string): void;
}

const CONNECT_TIMEOUT_MS = 2000;

export class RedisLink {
  readonly #url: string;
  readonly #channel: string;
  readonly #clock: Clock;
  readonly #events: RedisLinkEvents;
  #commands: RedisClient | null = null;
  #subscriber: RedisClient | null = null;
  #up = false;
  /** An outage was reported and not yet followed by `up`. */
  #downReported = false;
  #failures = 0;
  #timer: TimerHandle | null = null;
  #stopped = false;
  /** Bumped by every attempt, so that callbacks of an abandoned attempt are ignored. */
  #attempt = 0;

  constructor(url: string, channel: string, clock: Clock, events: RedisLinkEvents) {
    this.#url = url;
    this.#channel = channel;
    this.#clock = clock;
    this.#events = events;
  }

  get isUp(): boolean {
    return this.#up;
  }

  /** Starts connecting; `up` or `down` tells how it went. */
  start(): void {
    void this.#connect();
  }

  /** One command; rejects at once while the link is down. */
  command(name: string, args: string[]): Promise<unknown> {
    const c = this.#commands;
    if (!this.#up || c === null) return Promise.reject(new FulcrumError('E_INTERNAL', 'redis is not connected'));
    return c.send(name, args) as Promise<unknown>;
  }

  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#drop();
  }

  async #connect(): Promise<void> {
    const attempt = ++this.#attempt;
    const options = { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: CONNECT_TIMEOUT_MS };
    const commands = new RedisClient(this.#url, options);
    const subscriber = new RedisClient(this.#url, options);
    this.#commands = commands;
    this.#subscriber = subscriber;
    const lost = (e: Error | undefined): void => this.#failed(attempt, e?.message ?? 'connection closed');
    commands.onclose = lost;
    subscriber.onclose = lost;
    try {
      await commands.connect();
      await subscriber.connect();
      await subscriber.subscribe(this.#channel, (message) => {
        if (attempt === this.#attempt) this.#events.message(message);
      });
    } catch (e) {
      this.#failed(attempt, (e as Error).message);
      return;
    }
    if (attempt !== this.#attempt || this.#stopped) return;
    this.#up = true;
    this.#failures = 0;
    this.#downReported = false;
    this.#events.up();
  }

  #failed(attempt: number, why: string): void {
    if (attempt !== this.#attempt || this.#stopped) return;
    this.#attempt++; // later callbacks of this attempt are stale
    this.#up = false;
    this.#drop();
    if (!this.#downReported) {
      this.#downReported = true;
      this.#events.down(why);
    }
    const wait = reconnectDelayMs(this.#failures++);
    this.#timer = this.#clock.setTimeout((link) => {
      link.#timer = null;
      if (!link.#stopped) void link.#connect();
    }, wait, this);
  }

  #drop(): void {
    for (const c of [this.#commands, this.#subscriber]) {
      if (c === null) continue;
      c.onclose = null;
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    this.#commands = null;
    this.#subscriber = null;
  }
}
