#!/usr/bin/env bash
# Prints ctlab's version, valid both for `ctlab version` and as a Debian
# version: from `git describe --tags --always --dirty`.
#   v1.2.0                  -> 1.2.0
#   v1.2.0-3-gabc1234       -> 1.2.0+3.gabc1234
#   abc1234 (no tag yet)    -> 0.1.0+<commits>.gabc1234  (sorts by history)
#   ...-dirty               -> ...+dirty / ....dirty
# Outside a git checkout: 0.1.0.
set -euo pipefail
cd "$(dirname "$0")/../.."
d=$(git describe --tags --always --dirty 2>/dev/null) || { echo 0.1.0; exit 0; }
dirty=
case $d in *-dirty) dirty=1; d=${d%-dirty} ;; esac
if ! git describe --tags --abbrev=0 >/dev/null 2>&1; then   # no tag yet
  v="0.1.0+$(git rev-list --count HEAD).g$d"
elif [[ $d =~ ^v?([0-9][0-9A-Za-z.~]*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
  v="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
elif [[ $d =~ ^v?([0-9][0-9A-Za-z.~]*)$ ]]; then
  v=${BASH_REMATCH[1]}
else
  echo "version: cannot make a version of tag $d" >&2; exit 1
fi
if [ -n "$dirty" ]; then
  case $v in *+*) v="$v.dirty" ;; *) v="$v+dirty" ;; esac
fi
echo "$v"
