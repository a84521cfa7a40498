#!/usr/bin/env bash
# `make fresh-check`: the current commit, cloned into a scratch folder, then CI's own script
# there (.ci/run: the services, then `make test` from nothing: a new venv with the locked
# versions). Uncommitted changes are not part of it: commit first.
# FRESH_DIR=... clones somewhere else; KEEP=1 keeps the clone afterwards.
set -euo pipefail
root="$(git rev-parse --show-toplevel)"
commit="$(git -C "$root" rev-parse HEAD)"
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-check: uncommitted changes are not checked; this checks $commit" >&2
fi
# A folder of its own: no ../shared beside it, no venv, no caches, as on a new machine.
scratch="${FRESH_DIR:-$(mktemp -d -t stackyard-fresh.XXXXXX)}"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$scratch"; }
trap cleanup EXIT
git clone -q --no-hardlinks "$root" "$scratch/stackyard"
git -C "$scratch/stackyard" checkout -q "$commit"
echo "fresh-check: $commit in $scratch/stackyard"
cd "$scratch/stackyard"
start=$SECONDS
bash .ci/run  # the machine's services, then the README's `make test`, with CI=true
echo "fresh-check: passed in $((SECONDS - start)) s"
