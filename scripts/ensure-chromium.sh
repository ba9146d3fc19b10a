#!/bin/sh
# Makes sure Debian's Chromium is at /usr/bin/chromium for the dashboard browser test
# (test/e2e/dashboard.test.ts drives it with playwright-core; no browser download happens).
# Exits 0 when Chromium is there (already, or installed now), non-zero when it cannot be had;
# the test then skips with the reason. CI starts from a fresh machine, so it runs this first.
set -u
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and this system has no apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a parallel install) holds the lock for a while: wait for it, bounded.
LOCK_WAIT="-o DPkg::Lock::Timeout=300"
if ! apt-get $LOCK_WAIT install -y --no-install-recommends chromium >/tmp/ensure-chromium.log 2>&1; then
  apt-get $LOCK_WAIT update >>/tmp/ensure-chromium.log 2>&1 || true
  if ! apt-get $LOCK_WAIT install -y --no-install-recommends chromium >>/tmp/ensure-chromium.log 2>&1; then
    echo "ensure-chromium: apt-get install chromium failed; see /tmp/ensure-chromium.log" >&2
    tail -5 /tmp/ensure-chromium.log >&2
    exit 1
  fi
fi
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: installed, but $CHROMIUM is still missing" >&2; exit 1; }
exit 0
