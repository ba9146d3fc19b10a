/**
 * The server behind the balancers in bench/tls.ts: plain TCP. A connection may start with
 * "BULK <bytes>\n"; the sink then counts that many bytes and answers "ok\n". Anything else
 * (handshake-only connections) is read and dropped.
 */
const port = Number(process.argv[2]);
interface State { want: number; got: number; head: string }
Bun.listen<State>({
  hostname: '127.0.0.1',
  port,
  socket: {
    open(s) { s.data = { want: -1, got: 0, head: '' }; },
    data(s, d) {
      const st = s.data;
      let chunk = d;
      if (st.want < 0) {
        st.head += d.toString('latin1', 0, Math.min(d.length, 64));
        const nl = st.head.indexOf('\n');
        if (nl < 0) return;
        const m = /^BULK (\d+)/.exec(st.head);
        st.want = m === null ? Number.MAX_SAFE_INTEGER : Number(m[1]);
        chunk = d.subarray(Buffer.byteLength(st.head.slice(0, nl + 1), 'latin1'));
      }
      st.got += chunk.length;
      if (st.got >= st.want) s.write('ok\n');
    },
    end(s) { s.end(); },
    error() {},
  },
});
export {};
