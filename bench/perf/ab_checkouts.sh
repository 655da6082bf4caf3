#!/usr/bin/env bash
# Whole-process time of `hdr train CONFIG [OVERRIDES]` from two checkouts, alternated ROUNDS times.
# For measuring a change against the code before it:
#   git worktree add /tmp/hdr-old <commit>
#   bash bench/perf/ab_checkouts.sh /tmp/hdr-old . 3 configs/usps_cnn.yaml training.epochs=30
# Prints wall and CPU seconds (user + system) per run; the checkouts share this venv.
set -euo pipefail
old=$1 new=$2 rounds=$3; shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)  # the repository: this script is bench/perf/ab_checkouts.sh
py=$root/.venv/bin/python
export HDR_DATA_DIR=${HDR_DATA_DIR:-$(cd "$root/.." && pwd)/shared/datasets}
runs=$(mktemp -d)
for r in $(seq "$rounds"); do
  for side in old new; do
    dir=${!side}
    cfg=$root/$1
    ( cd "$dir" && /usr/bin/time -f "$side wall %e cpu %U+%S" "$py" -m hdr.cli train "$cfg" "${@:2}" \
        --runs-dir "$runs/$side" -q >/dev/null )
  done
done 2>&1 | grep -E "^(old|new) wall|rror"
rm -rf "$runs"
