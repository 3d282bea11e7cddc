#!/usr/bin/env bash
# Pins the newest versions that pyproject.toml allows into constraints.txt: installs the
# project with its test extra into a new virtual environment and records what pip chose.
# Run it, then the README's test command; commit constraints.txt when the suite passes.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=$(mktemp -d)
trap 'rm -rf "$folder"' EXIT
python3 -m venv "$folder/venv"
"$folder/venv/bin/python" -m pip install -q -e ".[test,redis]"
{
  echo "# The versions CI and the README's test command install (pip install -c constraints.txt)."
  echo "# Refreshed by scripts/refresh-constraints.sh on $(date -u +%Y-%m-%d) with $(python3 --version)."
  "$folder/venv/bin/python" -m pip freeze --exclude-editable --all | grep -v -E '^(pip|setuptools|wheel)=='
} > constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) packages pinned"
