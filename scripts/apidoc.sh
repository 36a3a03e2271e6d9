#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The API reference: runs doxygen over the public headers (docs/Doxyfile) into build/docs/html
# (open build/docs/html/index.html). Any doxygen warning fails it (an undocumented public class,
# function or member, a broken reference): the warnings are printed with their count and the
# status is 1. 77 when doxygen is not installed (`apt-get install doxygen`, or scripts/deps.sh
# doxygen). Runs from any folder; about a second.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

if ! command -v doxygen >/dev/null 2>&1; then
    echo "apidoc: doxygen is not installed (Debian: apt-get install doxygen)"
    exit 77
fi

out=build/docs
# A fresh folder each time: no page of a class that no longer exists survives.
rm -rf "$out/html"
mkdir -p "$out"
warnings=$out/warnings.log
rc=0
# NOTE: docs/Doxyfile sets WARN_AS_ERROR = FAIL_ON_WARNINGS (the status says whether anything
# warned) and QUIET (stdout is progress only); warnings go to stderr, one per line.
doxygen docs/Doxyfile >"$out/doxygen.log" 2>"$warnings" || rc=$?
count=$(grep -c . "$warnings")
if ((rc != 0 || count > 0)); then
    # Doxygen reads the headers through the include/corio symlink: print the paths as in the tree.
    sed "s|$(pwd)/include/corio/||" "$warnings"
    echo "apidoc: $count doxygen warning(s) (doxygen status $rc); full list in $warnings"
    exit 1
fi
echo "apidoc: 0 warnings; the API reference is in $(pwd)/$out/html/index.html"
