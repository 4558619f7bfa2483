#!/usr/bin/env bash
# Headless Chromium for the browser tests (Debian's package; Playwright drives it, it does not download one).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
else
  echo "Install Chromium (Debian/Ubuntu: sudo apt-get install chromium) to run the browser tests." >&2
  exit 1
fi
