#!/usr/bin/env bash
# Proves the README's quick start on a fresh machine, as CI and a new user meet it: clones HEAD
# (what is committed, nothing else) into a new directory only root can enter (mktemp -d: 0700),
# runs `npm ci && npm start` (the server must answer on 21 and 63006-63010 and serve an image),
# then `npm test` N times in a row (default 5). Stops at the first failure, naming the run.
#
#   scripts/fresh-clone-test.sh [N]
#
# Root only (port 21, and the suite's firewall tests). The temp directory is removed at exit.
set -euo pipefail
runs=${1:-5}
if [ "$(id -u)" != 0 ]; then echo "fresh-clone-test: run as root (port 21 and the firewall tests need it)" >&2; exit 2; fi
src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM -- "-$server" 2>/dev/null || true; sleep 2; kill -KILL -- "-$server" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
echo "fresh-clone-test: cloning $(git -C "$src" rev-parse --short HEAD) into $dir (mode $(stat -c %a "$dir"))"
git clone -q "$src" "$dir/swfw"
cd "$dir/swfw"

echo "fresh-clone-test: npm ci && npm start"
npm ci --no-audit --no-fund >npm-ci.log 2>&1 || { tail -20 npm-ci.log; exit 1; }
# Its own process group, so npm, sh and node stop together, by the group's id.
SWFW_PASSWORD=fresh-clone-test setsid npm start >start.log 2>&1 &
server=$!
for _ in $(seq 1 240); do
  grep -q 'swfw serving' start.log && break
  kill -0 "$server" 2>/dev/null || { cat start.log; echo "fresh-clone-test: npm start exited" >&2; exit 1; }
  sleep 0.5
done
grep -q 'swfw serving' start.log || { cat start.log; echo "fresh-clone-test: npm start never served" >&2; exit 1; }
grep -E 'npm start:|swfw serving' start.log
for port in 21 63006 63007 63008 63009 63010; do
  ss -Htln "sport = :$port" | grep -q . || { echo "fresh-clone-test: nothing listens on $port" >&2; exit 1; }
done
want=$(node -e "const c=require('./fixtures/images/catalog.json');console.log(c.images.find(i=>i.file==='dell/OS10_10.5.6.0.bin').sha256)")
got=$(curl -s --max-time 20 -u switch:fresh-clone-test ftp://127.0.0.1/dell/OS10_10.5.6.0.bin | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "fresh-clone-test: the image served has sha256 $got, not $want" >&2; exit 1; }
echo "fresh-clone-test: npm start serves on 21 and 63006-63010; dell/OS10_10.5.6.0.bin verified"
kill -TERM -- "-$server"
wait "$server" 2>/dev/null || true
server=""

for i in $(seq 1 "$runs"); do
  echo "fresh-clone-test: npm test, run $i of $runs"
  if ! npm test >"test-$i.log" 2>&1; then
    # Mocha's summary lines are indented by two spaces; test titles by four or more.
    grep -E '^  [0-9]+ (passing|failing|pending)' "test-$i.log" || true
    awk '/^  [0-9]+ failing/,0' "test-$i.log" | head -80
    # The clone is removed at exit; the whole log is kept for whoever reads the failure.
    kept=$(mktemp /tmp/fresh-clone-test-run$i-XXXXXX.log)
    cp "test-$i.log" "$kept"
    echo "fresh-clone-test: run $i failed; its whole log is $kept" >&2
    exit 1
  fi
  grep -E '^  [0-9]+ (passing|pending)' "test-$i.log"
done
echo "fresh-clone-test: npm test passed $runs times in a row in a clone only root can enter"
