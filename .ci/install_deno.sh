#!/usr/bin/env bash
# Installs the pinned Linux Deno from npm into .tools/ (ignored by git) and prints its path.
# Idempotent: a second run reuses what is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=2.9.6
tools="$root/.tools"
deno="$tools/node_modules/.bin/deno"
if [ -x "$deno" ] && "$deno" --version 2>/dev/null | grep -q "^deno $version "; then
  echo "$deno"
  exit 0
fi
mkdir -p "$tools"
[ -f "$tools/package.json" ] || echo '{ "private": true }' >"$tools/package.json"
npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error "deno@$version" >&2
"$deno" --version >&2
echo "$deno"
