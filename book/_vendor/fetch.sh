#!/usr/bin/env bash
# Fetch the book's JavaScript into book/_vendor/static from the npm registry (pinned
# versions; npm checks each tarball's integrity) and verify every file against the
# committed SHA256SUMS, so the built pages load nothing from a CDN and work offline.
# static/ is git-ignored (embed-amd.js alone is 4 MB); `make install` and .ci/run call this.
#   usage: bash book/_vendor/fetch.sh            fetch if missing, then verify
#          bash book/_vendor/fetch.sh --update   re-pin: rewrite SHA256SUMS from what npm gives
set -euo pipefail
HTML_MANAGER=1.0.13   # @jupyter-widgets/html-manager for ipywidgets 8.1 (widget protocol 2.x)
REQUIREJS=2.3.7
MATHJAX=3.2.2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
update=0; [ "${1:-}" = "--update" ] && update=1
if [ "$update" = 0 ] && [ -d "$here/static" ] && (cd "$here" && sha256sum --quiet -c SHA256SUMS); then
  echo "book/_vendor/static is present and matches SHA256SUMS"; exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "@jupyter-widgets/html-manager@${HTML_MANAGER}" "requirejs@${REQUIREJS}" "mathjax@${MATHJAX}" >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar -xzf "$f" -C "${f%.tgz}"; done
hm="jupyter-widgets-html-manager-${HTML_MANAGER}/package"
rj="requirejs-${REQUIREJS}/package"
mj="mathjax-${MATHJAX}/package"
new="$tmp/static"
mkdir -p "$new/widgets" "$new/mathjax/output/chtml/fonts" "$new/mathjax/input/tex"
cp "$hm/dist/embed-amd.js" "$hm/dist/embed.js.LICENSE.txt" "$new/widgets/"
cp "$hm/LICENSE" "$new/widgets/LICENSE.html-manager.txt" 2>/dev/null || true
cp "$hm"/dist/*.woff2 "$new/widgets/"           # Font Awesome, resolved via assets-path.js
cp "$rj/require.js" "$new/widgets/require.js"
cp "$mj/es5/tex-mml-chtml.js" "$new/mathjax/"
cp -r "$mj/es5/output/chtml/fonts/woff-v2" "$new/mathjax/output/chtml/fonts/"
cp -r "$mj/es5/input/tex/extensions" "$new/mathjax/input/tex/"
cp "$mj/LICENSE" "$new/mathjax/LICENSE.txt"
# our two-line loader helper (committed) points the widget fonts at this folder
cp "$here/assets-path.js" "$new/widgets/"
rm -rf "$here/static"
mv "$new" "$here/static"
cd "$here"
if [ "$update" = 1 ]; then
  find static -type f ! -name SHA256SUMS | LC_ALL=C sort | xargs sha256sum > SHA256SUMS
else
  sha256sum --quiet -c SHA256SUMS || { echo "vendored files differ from SHA256SUMS" >&2; exit 1; }
fi
echo "vendored into $here/static:"; du -sh static
