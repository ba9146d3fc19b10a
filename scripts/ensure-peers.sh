#!/usr/bin/env bash
# Installs the real peers that comparison tests and benchmarks run against (pen, penctl,
# HAProxy, nginx, redis-server for the cluster's shared state, keepalived for the pair, python3 for Unix datagram sockets), from Debian's packages, when they are missing. `--bench` adds what only the
# benchmark needs: nginx-light with its stream module (a separate package in Debian, loaded as a
# dynamic module), util-linux for taskset, dnsperf (the UDP row's load generator), wrk (the HTTP row's) and strace for the system-call counts. Tests that need a peer skip
# with a message when it cannot be had (not root, no apt), so this never fails the suite.
set -u
want=()
command -v pen >/dev/null 2>&1 || want+=(pen)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || want+=(haproxy)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || want+=(redis-server)
# keepalived (VRRP) and iproute2 for the active/standby pair test (test/e2e/ha-pair.test.ts).
command -v keepalived >/dev/null 2>&1 || [ -x /usr/sbin/keepalived ] || want+=(keepalived)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || want+=(iproute2)
# The daemon and sd_notify tests bind Unix datagram sockets with python3 (Bun cannot).
command -v python3 >/dev/null 2>&1 || want+=(python3)
if [ "${1:-}" = "--bench" ]; then
  [ -x /usr/sbin/nginx ] || want+=(nginx-light)
  [ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || want+=(libnginx-mod-stream)
  command -v taskset >/dev/null 2>&1 || want+=(util-linux)
  command -v dnsperf >/dev/null 2>&1 || want+=(dnsperf)
  # strace counts each balancer's system calls per connection (bench/lib/syscalls.ts).
  command -v strace >/dev/null 2>&1 || want+=(strace)
  command -v wrk >/dev/null 2>&1 || want+=(wrk)
fi
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-peers: cannot install ${want[*]} (need root and apt-get); the tests that use them will skip" >&2
  exit 0
fi
echo "ensure-peers: installing ${want[*]} from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${want[@]}" >/tmp/fulcrum-apt.log 2>&1; then
  apt-get update >>/tmp/fulcrum-apt.log 2>&1
  apt-get install -y --no-install-recommends "${want[@]}" >>/tmp/fulcrum-apt.log 2>&1 || \
    echo "ensure-peers: install failed (see /tmp/fulcrum-apt.log); the tests that use them will skip" >&2
fi
# Debian starts the services it installs; the tests run their own instances on other ports.
for svc in haproxy nginx redis-server keepalived; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if [ -x "/etc/init.d/$svc" ]; then "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
done
exit 0
