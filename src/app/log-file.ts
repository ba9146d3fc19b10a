/**
 * An append-only log file that can be reopened (SIGHUP, for rotation by `mv`). Writes go
 * through the runtime's buffered file sink, so logging a connection never blocks the event loop.
 */
import type { FileSink } from 'bun';

export class LogFile {
  readonly path: string;
  #sink: FileSink | null = null;

  constructor(path: string) {
    this.path = path;
    this.reopen();
  }

  /** Opens (again) in append mode; the open is synchronous but happens only at start and on SIGHUP. */
  reopen(): void {
    const old = this.#sink;
    const fd = process.getBuiltinModule('node:fs').openSync(this.path, 'a');
    this.#sink = Bun.file(fd).writer({ highWaterMark: 64 * 1024 });
    if (old !== null) void old.end();
  }

  write(line: string): void {
    this.#sink?.write(line.endsWith('\n') ? line : line + '\n');
  }

  flush(): void {
    void this.#sink?.flush();
  }

  async close(): Promise<void> {
    const s = this.#sink;
    this.#sink = null;
    if (s !== null) await s.end();
  }
}
