#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages corio needs that are missing (nothing else, nothing downloaded
# at build time). Source it and call `corio_install_deps [extra packages...]`, or run it directly.
# CORIO_SKIP_DEPS=1 skips the step (for machines managed some other way).

# The packages every build needs (DESIGN.md, "Dependencies"). Two only for what is tested and
# measured here, never for the corio libraries: libseccomp-dev (tests/servers/seccomp_test.cpp
# refuses io_uring to the servers it starts) and libasio-dev (standalone Asio, header-only: the
# laboratory's peer rows, examples/lab/*/asio.cpp, built only where its header is found).
CORIO_DEPS=(liburing-dev meson ninja-build g++ doctest-dev libbenchmark-dev libcli11-dev pkg-config
    libseccomp-dev libasio-dev)

# Prints the names among "$@" that dpkg does not list as installed.
corio_missing_packages() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || printf '%s\n' "$pkg"
    done
}

# Installs CORIO_DEPS plus "$@" where missing: one `apt-get update`, one `apt-get install`.
corio_install_deps() {
    if [[ ${CORIO_SKIP_DEPS:-0} == 1 ]]; then
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "deps: not a Debian system; install by hand: ${CORIO_DEPS[*]} $*" >&2
        return 0
    fi
    local missing
    mapfile -t missing < <(corio_missing_packages "${CORIO_DEPS[@]}" "$@")
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    local -a sudo=()
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "deps: missing ${missing[*]}, and not root without sudo: install them first" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    echo "deps: installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" || return 1
}

# Run directly: install the defaults plus any packages named on the command line.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    corio_install_deps "$@"
fi
