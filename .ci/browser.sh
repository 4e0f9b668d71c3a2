#!/usr/bin/env bash
# Installs the browser the board-pack browser test (abaco_assets_tests/integration/test_board_pack_browser.py)
# and the board pack's PDF export use: Debian's chromium package, never a browser downloaded by a test.
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root for apt-get.
#
# Usage: .ci/browser.sh   (then ABACO_REQUIRE_BROWSER=1 makes the browser test fail instead of skip
#                          when chromium is missing)
set -euo pipefail

log() { printf '[browser] %s\n' "$*"; }

if [ -x /usr/bin/chromium ]; then
  log "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "need root to apt-get install chromium"; exit 1
fi
log "installing Debian's chromium"
apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
log "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
