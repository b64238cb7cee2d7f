#!/usr/bin/env bash
# Installs Debian's chromium for the report's browser test when it is missing and we may install
# system packages (root with apt-get). Never fails the build: without chromium the browser test is
# skipped with a visible reason.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not installed and cannot install it here: the report's browser test will be skipped"
  exit 0
fi
echo "installing chromium for the report's browser test (apt-get)"
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >/tmp/segforget-chromium-install.log 2>&1 \
  || echo "chromium install failed (see /tmp/segforget-chromium-install.log): the browser test will be skipped"
exit 0
