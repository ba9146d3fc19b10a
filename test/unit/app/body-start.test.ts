import { expect, test } from 'bun:test';
import { readBodyStart } from '../../../src/app/http/body-start.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = async (r: ReadableStream<Uint8Array>): Promise<string> => new TextDecoder().decode(new Uint8Array(await new Response(r).arrayBuffer()));

test('a short body that arrives at once is read whole', async () => {
  const body = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes('ab')), c.enqueue(bytes('cd')), c.close()) });
  const r = await readBodyStart(body, new ManualClock(), 1024);
  expect(r.kind).toBe('whole');
  if (r.kind === 'whole') expect(new TextDecoder().decode(r.bytes)).toBe('abcd');
});

test('a body that fails to read (a bad chunk) is refused before any server sees it', async () => {
  const body = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes('ab')), c.error(new Error('bad chunk size'))) });
  const r = await readBodyStart(body, new ManualClock(), 1024);
  expect(r.kind).toBe('failed');
});

test('a body over the limit is streamed from its first byte, nothing lost', async () => {
  const body = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes('0123')), c.enqueue(bytes('4567')), c.enqueue(bytes('89')), c.close()) });
  const r = await readBodyStart(body, new ManualClock(), 5);
  expect(r.kind).toBe('stream');
  if (r.kind === 'stream') expect(await text(r.body)).toBe('0123456789');
});

test('a slow body is streamed once the window closes, the read under way included', async () => {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (ctl = c) });
  const clock = new ManualClock();
  ctl.enqueue(bytes('first'));
  const started = readBodyStart(body, clock, 1024, 100);
  await Bun.sleep(0);
  clock.advance(100);
  const r = await started;
  expect(r.kind).toBe('stream');
  ctl.enqueue(bytes('-second'));
  ctl.close();
  if (r.kind === 'stream') expect(await text(r.body)).toBe('first-second');
});
