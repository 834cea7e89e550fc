#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed, for tests/report/test_compliance.py (it screenshots the HTML compliance report
# headless) and docs/render_*.py. Idempotent: when /usr/bin/chromium is there, it only says so. Installing needs
# root (CI runs as root); otherwise it prints what to run and exits 0, and the browser test then fails saying so.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: chromium is already installed ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: /usr/bin/chromium is missing and this is not root; run: sudo apt-get install -y chromium" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: /usr/bin/chromium is missing and there is no apt-get; install Chromium by hand" >&2
  exit 0
fi
echo "install-chromium: installing chromium from Debian (apt-get, about a minute)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2
echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)" >&2
