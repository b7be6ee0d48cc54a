#!/usr/bin/env bash
# Runs the unit and protocol tests on another Node release, taken from the npm registry's binary
# package (node-linux-<arch>) into a temporary prefix: the system Node is left as it is.
# Needs `npm run build` first (the tests run from dist/).
#
#   scripts/test-other-node.sh 24.22.3
set -euo pipefail
version=${1:?usage: scripts/test-other-node.sh NODE_VERSION}
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-other-node: no node-linux package for $(uname -m)" >&2; exit 2 ;;
esac
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
npm install --prefix "$prefix" --no-audit --no-fund --no-save "node-linux-$arch@$version" >/dev/null
node="$prefix/node_modules/node-linux-$arch/bin/node"
echo "test-other-node: $("$node" --version), unit and protocol tests"
"$node" node_modules/.bin/mocha --no-config --require dist/test/helpers/leakCheck.js --timeout 30000 \
  'dist/test/unit/**/*.test.js' 'dist/test/protocol/**/*.test.js'
