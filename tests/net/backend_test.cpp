// SPDX-License-Identifier: MIT
// The backend seam (docs/runtime.md, "Backends"): choosing one, and what the epoll backend must
// get right that no other suite pins down. The rest of the suite runs on both backends (the test
// command runs every binary twice), so these cases are about the seam itself.
#include <corio/net/unix_socket.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_all.hpp>
#include "tests/support/backend.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using net::unix_stream;

namespace {

/// Sets an environment variable for one scope and puts the previous value back.
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : m_name(name) {
        if (const char* old = std::getenv(name))
            m_previous = old;
        ::setenv(name, value, 1);
    }
    ~scoped_env() {
        if (m_previous)
            ::setenv(m_name, m_previous->c_str(), 1);
        else
            ::unsetenv(m_name);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    const char* m_name;
    std::optional<std::string> m_previous;
};

io_context_options on(backend_kind kind) {
    io_context_options opts;
    opts.backend = kind;
    return opts;
}

/// The backends this machine can run: epoll always, io_uring where the kernel allows it.
std::vector<backend_kind> available_backends() {
    std::vector<backend_kind> kinds{backend_kind::epoll};
    try {
        io_context probe(on(backend_kind::io_uring));
        kinds.push_back(backend_kind::io_uring);
    } catch (const std::system_error&) {
    }
    return kinds;
}

std::pair<unix_stream, unix_stream> socket_pair() {
    auto p = unix_stream::pair();
    REQUIRE(p.has_value());
    return std::move(*p);
}

/// Two receives under a deadline each: what they returned (a byte count, or -errno).
task<std::pair<long, long>> receive_twice(unix_stream* s) {
    std::array<char, 100> buffer{};
    result<std::size_t> first = co_await with_timeout(s->recv_some(std::span(buffer)), 5s);
    result<std::size_t> second = co_await with_timeout(s->recv_some(std::span(buffer)), 5s);
    co_return std::pair<long, long>{first ? static_cast<long>(*first) : -first.error().value(),
                                    second ? static_cast<long>(*second) : -second.error().value()};
}

/// After one turn (the reader's recv is waiting by then), the last bytes and the end of the
/// stream arrive together, with one readiness edge.
task<void> send_then_hang_up(int fd) {
    result<void> turned = co_await nop();
    turned.value();
    REQUIRE(::send(fd, "0123456789", 10, 0) == 10);
    REQUIRE(::shutdown(fd, SHUT_WR) == 0);
}

task<std::pair<long, long>> data_and_hang_up_in_one_edge() {
    auto [a, b] = socket_pair();
    auto both = when_all(receive_twice(&b), send_then_hang_up(a.native_handle()));
    auto results = co_await both;
    co_return std::get<0>(results);
}

task<long> receive_after_reuse() {
    int reused_fd = -1;
    {
        // A receive that waits (on epoll: the descriptor joins the epoll set, marked not
        // readable), times out, and its socket is closed by the destructor.
        auto [a, b] = socket_pair();
        std::array<char, 8> buffer{};
        result<std::size_t> r = co_await with_timeout(b.recv_some(std::span(buffer)), 1ms);
        REQUIRE(r.error() == std::errc::timed_out);
        reused_fd = b.native_handle();
    }
    auto [c, d] = socket_pair(); // the lowest free numbers: the closed pair's
    if (d.native_handle() != reused_fd && c.native_handle() != reused_fd)
        MESSAGE("no descriptor number was reused; the case proves less");
    unix_stream& receiver = d.native_handle() == reused_fd ? d : c;
    unix_stream& sender = d.native_handle() == reused_fd ? c : d;
    REQUIRE(::send(sender.native_handle(), "x", 1, 0) == 1); // before the receive: no later edge
    std::array<char, 8> buffer{};
    result<std::size_t> r = co_await with_timeout(receiver.recv_some(std::span(buffer)), 5s);
    co_return r ? static_cast<long>(*r) : -r.error().value();
}

/// A send and a recv with the caller's MSG_DONTWAIT on a socket that cannot take or give a byte:
/// both complete with EAGAIN at once, as io_uring completes them (REQ_F_NOWAIT).
task<std::pair<std::error_code, std::error_code>> dontwait_never_waits() {
    auto [a, b] = socket_pair();
    std::vector<std::byte> chunk(4096, std::byte{1});
    while (::send(a.native_handle(), chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
    } // a's send buffer (and b's receive buffer) full
    result<std::size_t> sent = co_await a.send_some(chunk, MSG_DONTWAIT);
    std::vector<std::byte> into(16);
    result<std::size_t> got = co_await a.recv_some(into, MSG_DONTWAIT); // nothing sent to a
    co_return std::pair{sent.error(), got.error()};
}

task<result<void>> one_nop() {
    result<void> r = co_await nop();
    co_return r;
}

task<std::error_code> unsupported_opcode() {
    auto prep = [](io_uring_sqe* sqe) {
        io_uring_prep_madvise(sqe, nullptr, 0, 0); // nothing a readiness loop can offer
    };
    result<uring_completion> r = co_await submit(prep);
    co_return r ? std::error_code{} : r.error();
}

} // namespace

TEST_CASE("io_context_options::backend picks the backend, whatever CORIO_BACKEND says") {
    scoped_env env("CORIO_BACKEND", "io_uring");
    io_context ctx(on(backend_kind::epoll));
    CHECK(ctx.backend() == backend_kind::epoll);
    CHECK(ctx.ring_flags() == 0);
    CHECK(std::string(to_string(ctx.backend())) == "epoll");
    CHECK(sync_wait(ctx, one_nop()).has_value());
}

TEST_CASE("CORIO_BACKEND picks the backend when the options do not") {
    {
        scoped_env env("CORIO_BACKEND", "epoll");
        io_context ctx;
        CHECK(ctx.backend() == backend_kind::epoll);
    }
    if (available_backends().size() == 2) {
        scoped_env env("CORIO_BACKEND", "io_uring");
        io_context ctx;
        CHECK(ctx.backend() == backend_kind::io_uring);
    }
}

TEST_CASE("CORIO_BACKEND with an unknown name throws, naming it") {
    scoped_env env("CORIO_BACKEND", "kqueue");
    try {
        io_context ctx;
        FAIL("io_context accepted CORIO_BACKEND=kqueue");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("kqueue") != std::string::npos);
    }
}

TEST_CASE("the last bytes and the end of the stream in one edge: both receives see them "
          "(regression: the epoll backend took the short read for a drained socket and waited "
          "for an edge that never came)") {
    for (backend_kind kind : available_backends()) {
        CAPTURE(to_string(kind));
        io_context ctx(on(kind));
        std::pair<long, long> got = sync_wait(ctx, data_and_hang_up_in_one_edge());
        CHECK(got.first == 10);
        CHECK(got.second == 0);
    }
}

TEST_CASE("a socket that gets a closed socket's descriptor number is served (regression: the "
          "epoll backend's readiness state for that number outlived the close)") {
    for (backend_kind kind : available_backends()) {
        CAPTURE(to_string(kind));
        io_context ctx(on(kind));
        CHECK(sync_wait(ctx, receive_after_reuse()) == 1);
    }
}

TEST_CASE("regression: a send or recv with the caller's MSG_DONTWAIT completes with EAGAIN "
          "instead of waiting (the epoll backend waited for the edge, with no deadline)") {
    for (backend_kind kind : available_backends()) {
        CAPTURE(to_string(kind));
        io_context ctx(on(kind));
        auto [sent, got] = sync_wait(ctx, dontwait_never_waits());
        CHECK(sent == std::errc::resource_unavailable_try_again);
        CHECK(got == std::errc::resource_unavailable_try_again);
    }
}

TEST_CASE("an opcode the epoll backend cannot run resumes with operation_not_supported") {
    io_context ctx(on(backend_kind::epoll));
    CHECK(sync_wait(ctx, unsupported_opcode()) == std::errc::operation_not_supported);
}
