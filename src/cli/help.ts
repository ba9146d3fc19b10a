/** `fulcrum --help`: pen's usage, plus what Fulcrum adds. */
import { algorithmNames } from '../app/facts.ts';

export const HELP = `usage:
  fulcrum [options] [host:]port|/path/to/socket h1[:p1[:maxc1[:hard1[:weight1[:prio1]]]]] [h2...] ...
  fulcrum --config fulcrum.yaml
  fulcrum check fulcrum.yaml
  fulcrum ctl host:port|/path/to/socket command [args...]

Fulcrum is a TCP load balancer that takes pen's command line and pen's control commands.

pen options:
  -B host:port  abuse server for clients an ACL denies
  -b sec        blacklist time for a server that fails to connect [30]
  -c N          client table slots [2048]
  -d            debugging on (repeat -d for more)
  -a            with -dd, dump data in ASCII
  -e host:port  emergency server, used only when every server is unavailable
  -F file       pen command file (penctl syntax), re-read on SIGHUP
  -f            stay in the foreground
  -h            hash the client address for the first choice
  -N            hash without remembering the choice
  -l file       log each request as pen does to file (reopened on SIGHUP)
  -m N          accepts per event (accepted; the runtime batches accepts itself)
  -o command    run a penctl command at start (also -O)
  -p file       write the process id to file
  -q N          clients that may wait for a slot (under -x or pending connects) [4096]
  -r            round robin without client tracking
  -s            stubborn: if the first choice is unavailable, close the client
  -T sec        forget clients after sec seconds (0 = never) [0]
  -t sec        connect timeout [3]
  -u user       run as user after binding
  -W            weighted least connections (connections / weight)
  -w file       write HTML statistics to file on SIGUSR1
  -x N          max simultaneous connections [500]
  -P, -Q        accepted and ignored (Fulcrum always uses epoll)
  -j dir        refused: the runtime has no chroot
  -C port|addr:port|/path
                control port for penctl(1) and \`fulcrum ctl\` (see docs/penctl.md); as root
                a network control port needs -u, as in pen
  -X            allow the control port's exit command
  -E certfile   terminate TLS with this certificate (PEM; may also hold the key)
  -K keyfile    the certificate's private key (PEM) [the -E file]
  -G cafile     CA certificates that verify client certificates (with -R)
  -A cadir      a directory of CA certificates that verify client certificates (with -R)
  -R            require a valid client certificate
  -L protocol   ssl23 or tls1: TLS 1.2 and 1.3 [ssl23]; tls1.3: TLS 1.3 only; ssl2/ssl3 are refused
  -Z            accepted and ignored (BoringSSL's workarounds are always on)
  -H            add X-Forwarded-For (and X-Forwarded-Proto) to HTTP requests (docs/http.md)
  -U            not available in this version (refused with a message)

Fulcrum options:
  --config FILE      run from a YAML config file (see docs/config.md)
  --send-proxy v1|v2 send the client's address to servers with the PROXY protocol
  --algorithm NAME   ${algorithmNames.join(', ')}
  --admin ADDR       HTTP admin API, /metrics and dashboard on a loopback host:port or a Unix
                     socket path (see docs/admin-api.md); read-only without a token file
  --admin-token-file FILE   bearer token that admin changes need
  --admin-allow-remote      allow a non-loopback --admin address
  --access-log FILE|-       one line per finished connection (docs/logging.md)
  --access-log-format json|text   [json]
  --log-format pen|fulcrum  what -l writes: pen's line per request, or one line per
                     finished connection with why and how it ended [pen]
  --state-file FILE  save client tracking tables on stop, load them at start
  --diagnostics-log stderr|syslog|syslog:PATH|FILE   where Fulcrum's own messages go
                     [stderr with -f or --config, else syslog] (docs/operations.md)
  --quiet            do not print the start line (pid and listeners)
  --workers N|auto   N processes share the port as one balancer (auto = one per CPU);
                     the started process checks and reports (docs/workers.md) [1]
  --check KIND       health-check every server: tcp, tls, http:/path (2xx/3xx),
                     http:/path:200 (or :2xx, :200-204); see docs/health.md
  --check-interval MS   time between checks of a server [2000]
  --check-timeout MS    time a check may take [min(1000, interval)]
  --rise N           passed checks in a row that bring a server back [2]
  --fall N           failed checks in a row that take a server down [3]
  --help, --version

TLS commands (-o or -F): ssl_ciphers, ssl_option, ssl_sni_path, ssl_ocsp_response,
ssl_client_renegotiation_interval (see docs/tls.md).

signals: TERM stops, HUP reopens the logs and re-reads -F / --config and certificate files,
USR1 prints statistics.
control: \`fulcrum ctl ADDR reload\` does what HUP does and answers what changed.

examples:
  fulcrum -f 8080 127.0.0.1:9001 127.0.0.1:9002
  fulcrum -E cert.pem -K key.pem 443 app1:80 app2:80
`;
