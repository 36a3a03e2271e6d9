// SPDX-License-Identifier: MIT
// Which backend the suite runs on (the test command runs it on both, see scripts/test.sh), for
// the few cases that only make sense on one: they skip themselves on the other, and doctest
// counts them as skipped.
#pragma once

#include <corio/runtime/io_context.hpp>

namespace corio::test {

/// The backend a default io_context gets in this process (CORIO_BACKEND, or io_uring falling
/// back to epoll where it is refused). Asked once.
[[nodiscard]] inline backend_kind default_backend() {
    static const backend_kind kind = [] {
        io_context probe;
        return probe.backend();
    }();
    return kind;
}

/// For `TEST_CASE("..." * doctest::skip(test::not_on_io_uring()))`: io_uring-only assertions.
[[nodiscard]] inline bool not_on_io_uring() { return default_backend() != backend_kind::io_uring; }

} // namespace corio::test
