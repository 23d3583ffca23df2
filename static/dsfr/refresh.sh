#!/bin/sh
# Vendors the State design system (DSFR, npm package @gouvfr/dsfr) into static/dsfr/ at the pinned version:
# its compiled CSS, the Marianne and Spectral fonts, the icons that CSS refers to, the module JS (which only
# improves the pages: every step works without it), the favicon and the licence. Run from anywhere:
#   static/dsfr/refresh.sh            # the pinned version below
#   DSFR_VERSION=1.15.3 static/dsfr/refresh.sh
# Needs npm (only to download the package tarball; nothing is installed) and tar.
set -eu
DSFR_VERSION="${DSFR_VERSION:-1.15.3}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "@gouvfr/dsfr@$DSFR_VERSION" >/dev/null && tar xzf gouvfr-dsfr-*.tgz)
dist="$work/package/dist"

rm -rf "$here/fonts" "$here/icons" "$here/favicon"
mkdir -p "$here/fonts" "$here/favicon"
cp "$dist/dsfr.min.css" "$dist/dsfr.module.min.js" "$here/"
cp "$dist"/fonts/*.woff2 "$here/fonts/"  # every browser with CSS variables reads woff2
cp "$dist/favicon/favicon.svg" "$dist/favicon/favicon.ico" "$dist/favicon/apple-touch-icon.png" "$here/favicon/"
cp "$work/package/LICENSE.md" "$here/LICENSE.md"
# Only the icons the stylesheet names (url(icons/…)), not the 4 MB collection.
grep -o 'url(icons/[^)]*)' "$here/dsfr.min.css" | sed 's/^url(//; s/)$//' | sort -u | while read -r icon; do
    mkdir -p "$here/$(dirname "$icon")"
    cp "$dist/$icon" "$here/$icon"
done
# The few utility icons the templates use (class fr-icon-NAME), in icons.css, with their SVGs.
ICONS="arrow-left-line arrow-right-line question-line phone-line mail-line lock-line account-circle-line logout-box-r-line external-link-line"
python3 - "$dist/utility/icons/icons.min.css" "$here/icons.css" $ICONS <<'PY'
import re, sys
source, target, *names = sys.argv[1:]
css = open(source, encoding="utf-8").read()
rules = []
for name in names:
    rule = re.search(r"\.fr-icon-%s:after,\.fr-icon-%s:before\{-webkit-mask-image:[^}]*\}" % (name, name), css)
    if rule is None:
        sys.exit(f"icon {name} not in the package")
    rules.append(rule.group(0).replace("../../icons/", "icons/"))
open(target, "w", encoding="utf-8").write("/* DSFR utility icons used by the templates (static/dsfr/refresh.sh) */\n"
                                          + "\n".join(rules) + "\n")
PY
grep -o 'url(icons/[^)]*)' "$here/icons.css" | sed 's/^url(//; s/)$//' | sort -u | while read -r icon; do
    mkdir -p "$here/$(dirname "$icon")"
    cp "$dist/$icon" "$here/$icon"
done
printf '%s\n' "$DSFR_VERSION" > "$here/VERSION"
echo "DSFR $DSFR_VERSION vendored in $here"
