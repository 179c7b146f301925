#!/usr/bin/env bash
# Vendor the web app's browser libraries from npm at pinned versions into callcenter/web/static/vendor/ (committed:
# the app serves them itself, never from a CDN, and neither CI nor a deployment needs npm). Run after changing a
# version below; it rewrites vendor/VERSIONS with each file's sha256, which a test checks.
#   scripts/vendor.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$HERE/callcenter/web/static/vendor"
PACKAGES=("chart.js@4.6.1" "swagger-ui-dist@5.35.0" "jssip@3.13.8")
# Build tools only (their output is vendored, not they): jssip on npm ships no browser bundle.
TOOLS=("esbuild@0.28.2")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --save-exact "${PACKAGES[@]}" "${TOOLS[@]}" >/dev/null
rm -rf "$OUT/chart.js" "$OUT/swagger-ui" "$OUT/jssip"
mkdir -p "$OUT/chart.js" "$OUT/swagger-ui" "$OUT/jssip"
cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md "$OUT/chart.js/"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
   node_modules/swagger-ui-dist/LICENSE "$OUT/swagger-ui/"
# JsSIP for the operator desk's softphone: one minified IIFE defining the global `JsSIP` (its dependencies inside).
node_modules/.bin/esbuild node_modules/jssip/lib/JsSIP.js --bundle --minify --format=iife --global-name=JsSIP \
  --target=es2020 --platform=browser --legal-comments=eof --log-level=warning --outfile="$OUT/jssip/jssip.min.js"
cp node_modules/jssip/LICENSE.md "$OUT/jssip/"
# The bundle ends with a source-map comment for a file we do not ship; browsers would ask for it.
sed -i '/^\/\/# sourceMappingURL=/d' "$OUT/swagger-ui/swagger-ui-bundle.js" "$OUT/chart.js/chart.umd.min.js"
{
  echo "# Vendored by scripts/vendor.sh from npm; sha256 of each file (tests/unit/test_web_assets.py checks them)."
  printf '%s\n' "${PACKAGES[@]}" | sed 's/^/package /'
  printf '%s\n' "${TOOLS[@]}" | sed 's/^/tool /'
  (cd "$OUT" && find chart.js swagger-ui jssip -type f | sort | xargs sha256sum)
} > "$OUT/VERSIONS"
echo "vendored: ${PACKAGES[*]} (built with ${TOOLS[*]}) into $OUT"
