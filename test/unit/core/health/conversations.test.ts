import { describe, expect, test } from 'bun:test';
import { AgentConversation, parseAgentReply } from '../../../../src/core/health/agent-check.ts';
import { checkSpec, firstCheckDelayMs, nextCheckDelayMs, parseStatusRanges, statusMatches } from '../../../../src/core/health/check-spec.ts';
import { isVerdict, type Step, type Verdict } from '../../../../src/core/health/conversation.ts';
import { HttpConversation } from '../../../../src/core/health/http-check.ts';
import { ScriptConversation } from '../../../../src/core/health/script-check.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (s: Step): string => (s !== null && 'send' in s ? new TextDecoder().decode(s.send) : '');
const verdict = (s: Step): Verdict => {
  if (!isVerdict(s)) throw new Error(`expected a verdict, got ${JSON.stringify(s)}`);
  return s;
};

/** Feeds `text` split at every position, expecting the same outcome each time. */
function atEverySplit(make: () => HttpConversation | ScriptConversation, text: string, check: (v: Verdict) => void): void {
  for (let i = 0; i <= text.length; i++) {
    const c = make();
    c.connected();
    let step: Step = c.data(enc(text.slice(0, i)));
    if (!isVerdict(step)) step = c.data(enc(text.slice(i)));
    check(isVerdict(step) ? step : c.ended());
  }
}

describe('status ranges', () => {
  test('200, 2xx, 200-299 and lists', () => {
    expect(parseStatusRanges([200, '3xx', '401-403'])).toEqual([[200, 200], [300, 399], [401, 403]]);
    expect(parseStatusRanges(['6xx'])).toBeNull();
    expect(parseStatusRanges(['abc'])).toBeNull();
    expect(parseStatusRanges(['300-200'])).toBeNull();
    expect(statusMatches([[200, 399]], 304)).toBe(true);
    expect(statusMatches([[200, 399]], 500)).toBe(false);
  });
});

describe('check schedule', () => {
  test('intervals spread by the jitter; the down interval applies while down; the first check lands in the first interval', () => {
    const spec = checkSpec('c', 'tcp', { intervalMs: 1000, downIntervalMs: 5000, jitter: 0.2 });
    expect(nextCheckDelayMs(spec, true, 0)).toBe(900);
    expect(nextCheckDelayMs(spec, true, 0.5)).toBe(1000);
    expect(nextCheckDelayMs(spec, true, 0.999999)).toBe(1100);
    expect(nextCheckDelayMs(spec, false, 0.5)).toBe(5000);
    expect(firstCheckDelayMs(spec, 0.25)).toBe(250);
    expect(firstCheckDelayMs(spec, 0)).toBe(1);
  });
});

describe('HTTP check', () => {
  const spec = { method: 'GET', path: '/health', host: null, expectStatus: [[200, 399]] as const, expectBody: null };

  test('sends one HTTP/1.1 request with Host and Connection: close', () => {
    const c = new HttpConversation(spec, '10.0.0.1');
    expect(dec(c.connected())).toBe('GET /health HTTP/1.1\r\nHost: 10.0.0.1\r\nUser-Agent: fulcrum-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n');
    expect(dec(new HttpConversation({ ...spec, method: 'HEAD', host: 'app.example' }, 'x').connected())).toStartWith('HEAD /health HTTP/1.1\r\nHost: app.example\r\n');
  });

  test('judges the status line wherever the bytes are split', () => {
    atEverySplit(() => new HttpConversation(spec, 'h'), 'HTTP/1.1 204 No Content\r\n\r\n', (v) => expect(v).toEqual({ passed: true, detail: 'HTTP status 204' }));
    atEverySplit(() => new HttpConversation(spec, 'h'), 'HTTP/1.1 500 Oops\r\n\r\n', (v) => expect(v).toEqual({ passed: false, detail: 'HTTP status 500' }));
  });

  test('a body pattern waits for the body (Content-Length or close)', () => {
    const withBody = { ...spec, expectBody: 'status: ok' };
    const resp = 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nstatus: ok';
    atEverySplit(() => new HttpConversation(withBody, 'h'), resp, (v) => expect(v.passed).toBe(true));
    const bad = 'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nstatus: fail';
    atEverySplit(() => new HttpConversation(withBody, 'h'), bad, (v) => expect(v.detail).toContain('does not match'));
    const c = new HttpConversation(withBody, 'h');
    c.connected();
    expect(c.data(enc('HTTP/1.0 200 OK\r\n\r\nxx status: ok'))).toBeNull();
    expect(c.ended().passed).toBe(true);
  });

  test('garbage and early closes fail with what was seen', () => {
    const c = new HttpConversation(spec, 'h');
    c.connected();
    expect(verdict(c.data(enc('SSH-2.0-OpenSSH\r\n'))).detail).toBe('not an HTTP response: "SSH-2.0-OpenSSH"');
    const d = new HttpConversation(spec, 'h');
    d.connected();
    expect(d.ended().detail).toBe('connection closed without a response');
  });
});

describe('send/expect script', () => {
  const redis = [
    { kind: 'send', data: enc('PING\r\n') },
    { kind: 'expect', match: { kind: 'string', text: '+PONG' } },
  ] as const;

  test('sends, then passes when the expected text arrives (any split)', () => {
    const c = new ScriptConversation(redis);
    expect(dec(c.connected())).toBe('PING\r\n');
    atEverySplit(() => new ScriptConversation(redis), '+PONG\r\n', (v) => expect(v.passed).toBe(true));
  });

  test('a wrong banner fails when the server closes, naming what it said', () => {
    const smtp = [{ kind: 'expect', match: { kind: 'regex', source: '^220 ' } }] as const;
    const c = new ScriptConversation(smtp);
    expect(c.connected()).toBeNull();
    expect(c.data(enc('554 go away\r\n'))).toBeNull();
    expect(c.waitingFor()).toBe('step 1: expected /^220 /, got "554 go away\\r\\n"');
    expect(c.ended()).toEqual({ passed: false, detail: 'connection closed at step 1: expected /^220 /, got "554 go away\\r\\n"' });
  });

  test('multi-step: expect, send, expect bytes', () => {
    const steps = [
      { kind: 'expect', match: { kind: 'string', text: '220' } },
      { kind: 'send', data: enc('EHLO x\r\n') },
      { kind: 'expect', match: { kind: 'bytes', data: enc('250') } },
    ] as const;
    const c = new ScriptConversation(steps);
    expect(c.connected()).toBeNull();
    expect(dec(c.data(enc('220 mail ready\r\n')))).toBe('EHLO x\r\n');
    expect(c.data(enc('250-mail\r\n'))).toEqual({ passed: true, detail: 'script of 3 step(s) completed' });
  });
});

describe('agent check', () => {
  test('parses HAProxy agent replies', () => {
    expect(parseAgentReply('up')).toEqual({ state: 'up', weightPercent: null, reason: '' });
    expect(parseAgentReply('ready 75%')).toEqual({ state: 'up', weightPercent: 75, reason: '' });
    expect(parseAgentReply('50%')).toEqual({ state: null, weightPercent: 50, reason: '' });
    expect(parseAgentReply('drain')).toEqual({ state: 'drain', weightPercent: null, reason: '' });
    expect(parseAgentReply('MAINT,0%')).toEqual({ state: 'maint', weightPercent: 0, reason: '' });
    expect(parseAgentReply('down #disk full')).toEqual({ state: 'down', weightPercent: null, reason: 'disk full' });
    expect(parseAgentReply('stopped')).toEqual({ state: 'down', weightPercent: null, reason: '' });
    expect(parseAgentReply('maxconn:10')).toBeNull();
    expect(parseAgentReply('')).toBeNull();
  });

  test('reads one line; sends the configured text first', () => {
    const c = new AgentConversation('app1\n');
    expect(dec(c.connected())).toBe('app1\n');
    expect(c.data(enc('dra'))).toBeNull();
    const v = verdict(c.data(enc('in 30%\r\n')));
    expect(v.agent).toEqual({ state: 'drain', weightPercent: 30, reason: '' });
    const d = new AgentConversation(null);
    expect(d.connected()).toBeNull();
    d.data(enc('up'));
    expect(d.ended().agent?.state).toBe('up');
    expect(new AgentConversation(null).ended().passed).toBe(false);
  });
});
