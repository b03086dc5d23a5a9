#!/usr/bin/env bash
# Install pek-federation into ./.venv, with the assets it serves (GraphiQL, from npm).
#   scripts/setup.sh          what `pek dev` needs
#   scripts/setup.sh --test   also the test tools: test extras, Node peers, headless Chromium
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1

say() { printf '[setup] %s\n' "$*" >&2; }

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { say "Python >= 3.11 is required (found $("$PYTHON" --version 2>&1))"; exit 1; }
[[ -x .venv/bin/python ]] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
.venv/bin/python -m pip install --quiet --upgrade pip
if (( with_tests )); then
  say "installing pek-federation with its test tools"
  .venv/bin/python -m pip install --quiet -e '.[test]'
else
  say "installing pek-federation"
  .venv/bin/python -m pip install --quiet -e .
fi

command -v npm >/dev/null || { say "npm (Node.js 20) is required for the GraphiQL assets"; exit 1; }
npm_dirs=(router/static)
(( with_tests )) && for d in tests/*/node; do [[ -f "$d/package.json" ]] && npm_dirs+=("$d"); done
for dir in "${npm_dirs[@]}"; do
  if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules" ]]; then
    say "npm ci in $dir"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
done

if (( with_tests )) && ! command -v chromium >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium for the GraphiQL browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "the browser test needs Chromium: sudo apt-get install chromium"
  fi
fi
say "done"
