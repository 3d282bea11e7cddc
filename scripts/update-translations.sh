#!/usr/bin/env bash
# Re-extract the translatable strings and merge them into the German catalog.
#
#   scripts/update-translations.sh      (from the repository root)
#
# 1. `pybabel extract` collects every _() / gettext() / ngettext() from board/**.py and
#    templates/**.html (see babel.cfg) into board/translations/messages.pot.
# 2. `pybabel update` merges that template into board/translations/de/LC_MESSAGES/messages.po
#    (`pybabel init` the first time). New strings arrive empty; strings that vanished from the
#    code are dropped (git keeps the history). Fuzzy matching is off, so a changed English
#    string never silently inherits a stale German text.
# 3. The entries still waiting for a translation are listed at the end.
#
# Locations are left out of both files so that moving code around does not touch them, and the
# .pot is only rewritten when its messages change, not merely its POT-Creation-Date.
# The app reads the .po file directly at start-up (board/i18n.py): there is nothing to compile.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TRANSLATIONS_DIR=board/translations
POT_FILE=$TRANSLATIONS_DIR/messages.pot
LOCALE=de
PO_FILE=$TRANSLATIONS_DIR/$LOCALE/LC_MESSAGES/messages.po
PROJECT=Supportboard
VERSION=$(python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

new_pot=$(mktemp "$TRANSLATIONS_DIR/.messages.pot.XXXXXX")
trap 'rm -f "$new_pot"' EXIT

pybabel --quiet extract \
    --mapping-file babel.cfg \
    --keyword _ --keyword gettext --keyword ngettext:1,2 \
    --no-location \
    --sort-output \
    --project "$PROJECT" \
    --version "$VERSION" \
    --header-comment "# Translations template for $PROJECT.
# Refresh with scripts/update-translations.sh." \
    --output-file "$new_pot" \
    .

# Keep the old template when only its POT-Creation-Date would change.
if [[ -f $POT_FILE ]] && diff -q \
    <(grep -v '^"POT-Creation-Date: ' "$POT_FILE") \
    <(grep -v '^"POT-Creation-Date: ' "$new_pot") >/dev/null; then
    echo "$POT_FILE is unchanged"
else
    mv "$new_pot" "$POT_FILE"
    echo "wrote $POT_FILE"
fi

if [[ -f $PO_FILE ]]; then
    pybabel --quiet update \
        --input-file "$POT_FILE" \
        --output-dir "$TRANSLATIONS_DIR" \
        --locale "$LOCALE" \
        --domain messages \
        --no-fuzzy-matching \
        --width 100 \
        --ignore-obsolete
else
    pybabel --quiet init \
        --input-file "$POT_FILE" \
        --output-dir "$TRANSLATIONS_DIR" \
        --locale "$LOCALE" \
        --domain messages
fi

python - "$PO_FILE" <<'PY'
import sys

from babel.messages.pofile import read_po

with open(sys.argv[1], "rb") as po_file:
    catalog = read_po(po_file)
todo = []
for message in catalog:
    if not message.id:
        continue
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    if message.fuzzy or not all(strings):
        todo.append(message.id if isinstance(message.id, str) else message.id[0])
print(f"{sys.argv[1]}: {len(catalog)} messages, {len(todo)} to translate")
for msgid in todo:
    print(f"  {msgid}")
PY
