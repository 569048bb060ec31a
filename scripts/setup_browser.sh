#!/usr/bin/env bash
# Makes the browser tests runnable: Debian's Chromium at /usr/bin/chromium (Playwright's own
# browser download cannot reach its servers here). Idempotent; installs only when missing and
# only as root; says what it did. The playwright/voila Python packages come from pip, not here.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    echo "setup_browser: $CHROMIUM present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown')); nothing to do"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup_browser: $CHROMIUM missing and not root; skipped (browser tests will skip)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_browser: $CHROMIUM missing and no apt-get; skipped (browser tests will skip)" >&2
    exit 0
fi
echo "setup_browser: installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "setup_browser: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
