/**
 * Standard error for the serving process's own lines (diagnostics, SIGUSR1's report, start-up
 * notes and errors), written through the runtime's file sink on fd 2 rather than process.stderr.
 * Both are non-blocking in the same way: a slow reader never holds the event loop, and what it
 * cannot take yet is kept and written when it can (console.error, by contrast, blocks). But
 * process.stderr is a Node stream whose construction loads node:fs and node:stream: ≈3 MB
 * resident for the start line alone (docs/performance.md, issue 10). Every write is flushed at
 * once, so a line is out before the next statement runs, and one written just before
 * process.exit is not lost while the reader keeps up (as with process.stderr).
 */
import type { FileSink } from 'bun';

let sink: FileSink | null = null;

export function writeStderr(text: string): void {
  sink ??= Bun.stderr.writer();
  sink.write(text);
  void sink.flush();
}
