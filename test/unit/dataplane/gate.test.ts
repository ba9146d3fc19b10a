/**
 * The gate before a session on TLS and passthrough listeners, on a fake socket and a manual
 * clock: what it passes on (facts, bytes already read), why it fails (each reason), its
 * deadline, and that it decides once and leaves no timer behind.
 */
import { describe, expect, test } from 'bun:test';
import type { SocketHandler } from 'bun';
import { clientHandlers } from '../../../src/dataplane/bun-tcp.ts';
import { classifyHandshakeError, Gate, subjectIdentity, type ClientAuth, type ConnectionFacts, type GateFailure, type TlsSocketInfo } from '../../../src/dataplane/gate.ts';
import type { StreamSocket } from '../../../src/dataplane/socket.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';
import { FakeSocket, reset } from './fake-socket.ts';

/** A ClientHello captured from `openssl s_client -servername api.Example.COM. -alpn h2,http/1.1` (as in tls-client-hello.test.ts). */
const HELLO = Buffer.from(
  '160301014f0100014b030337733290034460a93c40c54171c6ffdd58b2405bf1c8fe49ab2d12309baaaff82017fceffc82358c47fcb3bf5aaa1cd15ab627ae' +
    '5f4795107677c81816a4df27ef003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c01300' +
    '33009d009c003d003c0035002f00ff010000c40000001500130000106170692e4578616d706c652e434f4d2e000b000403000102000a0016001400' +
    '1d0017001e0019001801000101010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a00280403050306' +
    '03080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d0002010100330026002400' +
    '1d00205a861e4ddf6985c031627817b8ddf8ba4c39a8d2099461bd194c58cfa945146c',
  'hex',
);

const TIMEOUT_MS = 5000;

/** A gate on a fake socket, driven by the listener's shared handlers, and what its owner heard. */
function gated(clientAuth: ClientAuth | null, options: { timeoutMs?: number; maxHelloBytes?: number } = {}) {
  const clock = new ManualClock();
  const socket = new FakeSocket<Gate>(clientHandlers as unknown as SocketHandler<Gate>);
  const passed: ConnectionFacts[] = [];
  const failed: [GateFailure, string][] = [];
  const owner = {
    clock,
    gatePassed: (_s: StreamSocket<unknown>, facts: ConnectionFacts) => passed.push(facts),
    gateFailed: (reason: GateFailure, detail: string) => failed.push([reason, detail]),
  };
  const gate = new Gate(socket as StreamSocket<unknown>, owner, options.timeoutMs ?? TIMEOUT_MS, clientAuth, options.maxHelloBytes);
  socket.data = gate;
  return { clock, socket, gate, passed, failed, reasons: () => failed.map(([r]) => r) };
}

const sendBytes = (socket: FakeSocket<Gate>, b: Uint8Array): void => {
  (clientHandlers as unknown as SocketHandler<Gate>).data!(socket as never, Buffer.from(b));
};

function tlsInfo(o: { cert?: { subject?: Record<string, string | string[]>; fingerprint256?: string } | null; authorized?: boolean } = {}): TlsSocketInfo {
  return {
    getServername: () => 'Shop.Example.com.',
    alpnProtocol: 'h2',
    authorized: o.authorized ?? false,
    getPeerCertificate: () => o.cert ?? null,
    getTLSVersion: () => 'TLSv1.3',
    getCipher: () => ({ name: 'TLS_AES_128_GCM_SHA256' }),
    isSessionReused: () => false,
  };
}

describe('passthrough gate (reads the ClientHello)', () => {
  test('a whole ClientHello: passed on with its name, ALPN and bytes; the socket paused; no timer left', () => {
    const g = gated(null);
    sendBytes(g.socket, HELLO);
    expect(g.failed).toEqual([]);
    expect(g.passed.length).toBe(1);
    const f = g.passed[0]!;
    expect([f.serverName, f.alpn, f.terminated, f.tlsVersion]).toEqual(['api.example.com', ['h2', 'http/1.1'], false, 'TLSv1.3']);
    expect(Buffer.from(f.initial!).equals(HELLO)).toBe(true);
    expect(g.socket.ops).toEqual(['pause']);
    expect(g.clock.pending).toBe(0);
  });

  test.each([[1], [5], [100], [HELLO.length - 1]])('split after %i bytes: passed once the rest arrives', (at) => {
    const g = gated(null);
    sendBytes(g.socket, HELLO.subarray(0, at));
    expect([g.passed.length, g.failed.length]).toEqual([0, 0]);
    sendBytes(g.socket, HELLO.subarray(at));
    expect(g.passed.length).toBe(1);
    expect(Buffer.from(g.passed[0]!.initial!).equals(HELLO)).toBe(true);
  });

  const failures: [string, () => ReturnType<typeof gated>, GateFailure, string[]][] = [
    ['plain HTTP', () => { const g = gated(null); g.socket.receive('GET / HTTP/1.1\r\n\r\n'); return g; }, 'not-tls', ['end']],
    ['a ClientHello over the size limit', () => { const g = gated(null, { maxHelloBytes: 100 }); sendBytes(g.socket, HELLO); return g; }, 'hello-too-large', ['end']],
    ['the deadline', () => { const g = gated(null); sendBytes(g.socket, HELLO.subarray(0, 10)); g.clock.advance(TIMEOUT_MS); return g; }, 'timeout', ['end']],
    ['a FIN before the ClientHello ends', () => { const g = gated(null); sendBytes(g.socket, HELLO.subarray(0, 10)); g.socket.fin(); return g; }, 'client-closed', []],
    ['a clean close', () => { const g = gated(null); g.socket.close(); return g; }, 'client-closed', []],
    ['a reset', () => { const g = gated(null); g.socket.close(reset()); return g; }, 'client-reset', []],
    ['a socket error', () => { const g = gated(null); g.socket.error(reset()); return g; }, 'client-reset', []],
  ];
  test.each(failures)('fails on %s', (_name, run, reason, closes) => {
    const g = run();
    expect(g.reasons()).toEqual([reason]);
    expect(g.passed).toEqual([]);
    // The gate closes the socket itself only when the client is still there.
    expect(g.socket.closes).toEqual(closes);
    expect(g.clock.pending).toBe(0);
  });

  test('the deadline does not fire early, and decides once', () => {
    const g = gated(null);
    g.clock.advance(TIMEOUT_MS - 1);
    expect(g.failed).toEqual([]);
    g.clock.advance(1);
    sendBytes(g.socket, HELLO);
    g.socket.fin();
    g.socket.close(reset());
    g.gate.onHandshake(tlsInfo(), true, null);
    expect([g.reasons(), g.passed.length]).toEqual([['timeout'], 0]);
  });

  test('no deadline configured: no timer', () => {
    const g = gated(null, { timeoutMs: 0 });
    expect(g.clock.pending).toBe(0);
  });

  test('the idle timer and drain mean nothing to a gate', () => {
    const g = gated(null);
    g.socket.idle();
    g.socket.drain();
    expect([g.failed, g.passed, g.socket.ops]).toEqual([[], [], []]);
  });
});

describe('TLS gate (termination)', () => {
  test('a finished handshake: passed on with what it negotiated and the early data kept', () => {
    const g = gated('none');
    g.socket.receive('early');
    expect(g.passed).toEqual([]); // data waits for the handshake
    g.gate.onHandshake(tlsInfo(), true, null);
    const f = g.passed[0]!;
    expect({ ...f, initial: Buffer.from(f.initial!).toString() }).toEqual({
      serverName: 'shop.example.com',
      alpn: ['h2'],
      clientIdentity: null,
      clientFingerprint: null,
      tlsVersion: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256',
      resumed: false,
      terminated: true,
      initial: 'early',
    });
    expect([g.socket.ops, g.clock.pending]).toEqual([['pause'], 0]);
  });

  const cert = { subject: { CN: 'alice', O: 'Example' }, fingerprint256: 'AB:CD' };
  const auth: [string, ClientAuth, Parameters<typeof tlsInfo>[0], GateFailure | null, string | null][] = [
    ['optional, no certificate: passed without identity', 'optional', {}, null, null],
    ['optional, a verified certificate: passed with its identity', 'optional', { cert, authorized: true }, null, 'CN=alice'],
    ['required, a verified certificate', 'required', { cert, authorized: true }, null, 'CN=alice'],
    ['required, no certificate', 'required', {}, 'no-client-cert', null],
    ['required, a certificate that did not verify', 'required', { cert, authorized: false }, 'bad-client-cert', null],
    ['optional, a certificate that did not verify', 'optional', { cert, authorized: false }, 'bad-client-cert', null],
    ['none: a certificate is not looked at', 'none', { cert, authorized: false }, null, null],
  ];
  test.each(auth)('client certificates: %s', (_name, clientAuth, info, failure, identity) => {
    const g = gated(clientAuth);
    g.gate.onHandshake(tlsInfo(info), true, null);
    if (failure === null) {
      expect(g.failed).toEqual([]);
      expect(g.passed[0]!.clientIdentity).toBe(identity);
      expect(g.passed[0]!.clientFingerprint).toBe(identity === null ? null : 'AB:CD');
    } else {
      expect([g.reasons(), g.passed.length, g.socket.closes]).toEqual([[failure], 0, ['end']]);
    }
  });

  test('a failed handshake is classified from the error', () => {
    const g = gated('none');
    g.gate.onHandshake(tlsInfo(), false, new Error('SSL routines:HTTP_REQUEST'));
    expect([g.reasons(), g.socket.closes]).toEqual([['not-tls'], ['end']]);
  });

  test('a close with an error during the handshake is classified too', () => {
    const g = gated('none');
    g.socket.close(new Error('NO_SHARED_CIPHER'));
    expect([g.reasons(), g.socket.closes]).toEqual([['no-shared-cipher'], []]);
  });
});

describe('handshake error classes', () => {
  const rows: [string | null, GateFailure][] = [
    [null, 'handshake-failed'],
    ['UNSUPPORTED_PROTOCOL', 'protocol-version'],
    ['TLSV1_ALERT_PROTOCOL_VERSION', 'protocol-version'],
    ['HTTP_REQUEST', 'not-tls'],
    // Listed under not-tls too, but the protocol-version pattern (WRONG_VERSION) is tried first.
    ['WRONG_VERSION_NUMBER', 'protocol-version'],
    ['RECORD_TOO_LARGE', 'not-tls'],
    ['NO_SHARED_CIPHER', 'no-shared-cipher'],
    ['PEER_DID_NOT_RETURN_A_CERTIFICATE', 'no-client-cert'],
    ['NO_APPLICATION_PROTOCOL', 'no-alpn-match'],
    ['TLSV1_ALERT_UNKNOWN_CA', 'unknown-ca'],
    ['CERTIFICATE_VERIFY_FAILED', 'bad-client-cert'],
    ['ECONNRESET', 'client-reset'],
    ['something else', 'handshake-failed'],
  ];
  test.each(rows)('%s → %s', (message, reason) => {
    expect(classifyHandshakeError(message === null ? null : new Error(message))).toBe(reason);
  });

  test('the error code counts as well as the message', () => {
    expect(classifyHandshakeError(Object.assign(new Error('boom'), { code: 'ERR_SSL_NO_SHARED_CIPHER' }))).toBe('no-shared-cipher');
  });
});

describe('client identity from a certificate subject', () => {
  const rows: [Record<string, string | string[]> | undefined, string | null][] = [
    [undefined, null],
    [{}, null],
    [{ CN: 'alice', O: 'Example' }, 'CN=alice'],
    [{ CN: ['alice', 'bob'] }, 'CN=alice'],
    [{ O: 'Example', OU: ['a', 'b'] }, 'O=Example,OU=a+b'],
  ];
  test.each(rows)('%j → %s', (subject, identity) => {
    expect(subjectIdentity(subject)).toBe(identity);
  });
});
