#!/usr/bin/env bash
# Makes a fresh machine that has only Node and npm ready: pnpm, then the locked dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pnpm >/dev/null 2>&1; then
  echo "bootstrap: installing pnpm@10 with npm" >&2
  npm install -g pnpm@10 >/dev/null
fi
if [ ! -d node_modules/.pnpm ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then
  pnpm install --frozen-lockfile --reporter=append-only
fi
