#!/usr/bin/env bash
# Debian packages the test suite drives for real: Chromium (report.html drawn headless) and
# PostgreSQL 15 (the DuckLake catalog in a real server). Installed when missing and we can
# (root with apt-get); otherwise say what is missing: those tests skip outside CI.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "not installed: ${missing[*]} (apt-get install ${missing[*]}); their tests will skip" >&2
fi
