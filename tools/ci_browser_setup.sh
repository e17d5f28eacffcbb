#!/usr/bin/env bash
# Chromium and its driver for tests/test_browser.py and the docs' width check (tools/docs.py), from Debian's packages (Playwright cannot download browsers here).
# Does nothing when both are installed; otherwise needs apt-get and root (or sudo). Without them the browser test skips,
# saying what is missing. Measured on a Debian 12 container (apt-get update, then chromium, chromium-driver and their
# 105 dependencies): 21-38 s; nothing to do (0 s) when both are there.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "chromium and chromedriver are installed"
  exit 0
fi
command -v apt-get >/dev/null || { echo "FAIL: no apt-get: install chromium and chromedriver yourself" >&2; exit 1; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium chromium-driver >/dev/null
echo "installed chromium and chromedriver in $((SECONDS - start)) s: $(chromedriver --version)"
