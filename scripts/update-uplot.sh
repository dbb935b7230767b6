#!/usr/bin/env bash
# Refreshes the vendored uPlot chart library in collector/console/vendor/ from the npm registry.
# Usage: scripts/update-uplot.sh <exact version>, e.g. scripts/update-uplot.sh 1.6.32
set -euo pipefail
version="${1:?usage: $0 <exact uplot version, e.g. 1.6.32>}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "error: '$version' is not an exact version (x.y.z)" >&2
  exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="$repo/collector/console/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$version" >/dev/null)
tar -xzf "$work/uplot-$version.tgz" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$work/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$work/package/LICENSE" "$dest/LICENSE.uPlot"
sha="$(sha256sum "$work/uplot-$version.tgz" | cut -d' ' -f1)"
cat >"$dest/README.md" <<README
# Vendored: uPlot $version

Chart library used by the console's device and DLQ charts.

- Source: the npm registry, package \`uplot@$version\` (https://www.npmjs.com/package/uplot),
  tarball sha256 \`$sha\`.
- Files: \`dist/uPlot.iife.min.js\`, \`dist/uPlot.min.css\`, and its \`LICENSE\` (MIT) as
  \`LICENSE.uPlot\`. Nothing else is changed.
- Refresh or change the version: \`scripts/update-uplot.sh <version>\` (needs npm and network).
README
echo "uPlot $version vendored into $dest"
