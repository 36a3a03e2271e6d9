// SPDX-License-Identifier: MIT
#include <corio/fs/send_file.hpp>

#include <corio/fs/file.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/fs/temp_dir.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>

#include <stdexcept>
#include <string>
#include <thread>

using namespace corio;
using corio::test::pattern;
using corio::test::temp_dir;

namespace {

/// A connected pair of stream sockets and a thread that reads the receiving end to EOF.
class socket_sink {
public:
    /// Unix socketpair (tcp = false) or a TCP connection over 127.0.0.1, port 0.
    explicit socket_sink(bool tcp) {
        if (tcp)
            connect_tcp();
        else if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m_fds) != 0)
            throw std::runtime_error("socketpair failed");
        m_reader = std::thread([this] {
            char buf[65536];
            for (;;) {
                ssize_t n = ::read(m_fds[1], buf, sizeof buf);
                if (n <= 0)
                    break;
                m_received.append(buf, static_cast<std::size_t>(n));
            }
        });
    }
    ~socket_sink() {
        finish();
        ::close(m_fds[0]);
        if (m_fds[1] >= 0)
            ::close(m_fds[1]);
    }
    socket_sink(const socket_sink&) = delete;
    socket_sink& operator=(const socket_sink&) = delete;

    [[nodiscard]] int sender() const noexcept { return m_fds[0]; }

    /// Stops the reader and closes the receiving end: the peer is gone.
    void close_receiver() {
        ::shutdown(m_fds[1], SHUT_RDWR);
        m_reader.join();
        ::close(m_fds[1]);
        m_fds[1] = -1;
    }

    /// Ends the stream and returns everything the reader got.
    const std::string& finish() {
        if (m_reader.joinable()) {
            ::shutdown(m_fds[0], SHUT_WR);
            m_reader.join();
        }
        return m_received;
    }

private:
    void connect_tcp() {
        int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
            ::listen(listener, 1) != 0 ||
            ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("tcp listener failed");
        m_fds[0] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(m_fds[0], reinterpret_cast<sockaddr*>(&addr), len) != 0)
            throw std::runtime_error("tcp connect failed");
        m_fds[1] = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        ::close(listener);
        if (m_fds[1] < 0)
            throw std::runtime_error("tcp accept failed");
    }

    int m_fds[2] = {-1, -1}; // [0] sends (under test), [1] is drained by m_reader
    std::thread m_reader;    // reads m_fds[1] to EOF
    std::string m_received;  // what arrived
};

task<result<std::uint64_t>> send_range(std::string path, std::uint64_t offset, std::uint64_t length,
                                       int socket_fd, send_file_strategy strategy,
                                       std::size_t chunk) {
    result<file> opened = co_await file::open(std::move(path));
    file f = std::move(opened.value());
    send_file_options options;
    options.strategy = strategy;
    options.chunk_size = chunk;
    result<std::uint64_t> sent = co_await send_file_range(f, offset, length, socket_fd, options);
    co_return sent;
}

task<result<std::uint64_t>> send_range_within(std::string path, std::uint64_t length, int socket_fd,
                                              std::chrono::seconds limit) {
    result<std::uint64_t> r = co_await timeout(
        send_range(std::move(path), 0, length, socket_fd, send_file_strategy::splice, 65536),
        limit);
    co_return r;
}

task<result<std::uint64_t>> send_with_deadline(std::string path, std::uint64_t length,
                                               int socket_fd, send_file_strategy strategy) {
    result<std::uint64_t> r =
        co_await timeout(send_range(std::move(path), 0, length, socket_fd, strategy, 65536),
                         std::chrono::milliseconds(50));
    co_return r;
}

const char* name_of(send_file_strategy s) {
    switch (s) {
    case send_file_strategy::automatic:
        return "automatic";
    case send_file_strategy::read_send:
        return "read_send";
    case send_file_strategy::splice:
        return "splice";
    }
    return "?";
}

} // namespace

TEST_CASE("send_file_range delivers the exact bytes of a range with every strategy") {
    temp_dir dir;
    std::string bytes = pattern((2u << 20) + 333, 21);
    test::write_plain(dir / "f", bytes);
    for (send_file_strategy strategy : {send_file_strategy::read_send, send_file_strategy::splice,
                                        send_file_strategy::automatic}) {
        for (bool tcp : {false, true}) {
            CAPTURE(name_of(strategy));
            CAPTURE(tcp);
            socket_sink sink(tcp);
            const std::uint64_t offset = 4097, length = bytes.size() - 4097 - 1000;
            result<std::uint64_t> sent = sync_wait(
                send_range(dir / "f", offset, length, sink.sender(), strategy, 128 * 1024));
            CHECK(sent.value() == length);
            const std::string& got = sink.finish();
            CHECK(got.size() == length);
            CHECK(got == bytes.substr(offset, length));
        }
    }
}

TEST_CASE("send_file_range stops short at end of file and reports the bytes sent") {
    temp_dir dir;
    std::string bytes = pattern(300000, 22);
    test::write_plain(dir / "f", bytes);
    for (send_file_strategy strategy :
         {send_file_strategy::read_send, send_file_strategy::splice}) {
        CAPTURE(name_of(strategy));
        socket_sink sink(false);
        result<std::uint64_t> sent =
            sync_wait(send_range(dir / "f", 1000, 1u << 20, sink.sender(), strategy, 65536));
        CHECK(sent.value() == bytes.size() - 1000);
        CHECK(sink.finish() == bytes.substr(1000));
    }
}

TEST_CASE("send_file_range of an empty range or past the end sends nothing") {
    temp_dir dir;
    test::write_plain(dir / "f", "abc");
    for (send_file_strategy strategy :
         {send_file_strategy::read_send, send_file_strategy::splice}) {
        CAPTURE(name_of(strategy));
        socket_sink sink(false);
        CHECK(sync_wait(send_range(dir / "f", 0, 0, sink.sender(), strategy, 4096)).value() == 0);
        CHECK(sync_wait(send_range(dir / "f", 10, 5, sink.sender(), strategy, 4096)).value() == 0);
        CHECK(sink.finish().empty());
    }
}

TEST_CASE("send_file_range to a socket whose peer is gone is broken_pipe, not a signal") {
    temp_dir dir;
    test::write_plain(dir / "f", pattern(100000, 23));
    for (send_file_strategy strategy :
         {send_file_strategy::read_send, send_file_strategy::splice}) {
        for (bool tcp : {false, true}) {
            CAPTURE(name_of(strategy));
            CAPTURE(tcp);
            // In a child with SIGPIPE at its default action (the test main ignores it): exit
            // code 0 means broken_pipe came back as a value; death by SIGPIPE shows as a signal.
            pid_t child = ::fork();
            REQUIRE(child >= 0);
            if (child == 0) {
                std::signal(SIGPIPE, SIG_DFL);
                int code = 2;
                try {
                    socket_sink sink(tcp);
                    sink.close_receiver();
                    result<std::uint64_t> sent =
                        sync_wait(send_range(dir / "f", 0, 100000, sink.sender(), strategy, 65536));
                    code = (sent == std::errc::broken_pipe || sent == std::errc::connection_reset)
                               ? 0
                               : 1;
                } catch (...) {
                }
                ::_exit(code);
            }
            int status = 0;
            REQUIRE(::waitpid(child, &status, 0) == child);
            CHECK_FALSE(WIFSIGNALED(status));
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
        }
    }
}

TEST_CASE("send_file_range to something that is not a socket reports the kernel's error") {
    temp_dir dir;
    test::write_plain(dir / "f", "abc");
    int fd = ::open((dir / "f").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    result<std::uint64_t> sent =
        sync_wait(send_range(dir / "f", 0, 3, fd, send_file_strategy::read_send, 4096));
    CHECK(sent == std::errc::not_a_socket);
    ::close(fd);
}

TEST_CASE("regression: a forked child's failed splice leaves the parent's idle pipe clean "
          "(the child used the inherited pipe, left it full, and the parent's next splice "
          "blocked forever)") {
    temp_dir dir;
    std::string bytes = pattern(100000, 24);
    test::write_plain(dir / "f", bytes);
    {
        socket_sink warm(false); // leaves an idle pipe in this thread's cache
        CHECK(sync_wait(send_range_within(dir / "f", 1000, warm.sender(), std::chrono::seconds(5)))
                  .value() == 1000);
    }
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        socket_sink gone(false);
        gone.close_receiver();
        result<std::uint64_t> r =
            sync_wait(send_range_within(dir / "f", 100000, gone.sender(), std::chrono::seconds(5)));
        ::_exit(r ? 1 : 0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    socket_sink sink(false);
    result<std::uint64_t> sent =
        sync_wait(send_range_within(dir / "f", 100000, sink.sender(), std::chrono::seconds(5)));
    CHECK(sent.value() == 100000);
    CHECK(sink.finish() == bytes);
}

TEST_CASE("the default strategy delivers short and long ranges byte for byte") {
    temp_dir dir;
    std::string bytes = pattern(600000, 25);
    test::write_plain(dir / "f", bytes);
    CHECK(send_file_options{}.strategy == send_file_strategy::automatic);
    for (std::uint64_t length : {std::uint64_t{1}, std::uint64_t{5000}, k_splice_min_length - 1,
                                 k_splice_min_length, std::uint64_t{599999}}) {
        CAPTURE(length);
        socket_sink sink(false);
        result<std::uint64_t> sent = sync_wait(send_range(
            dir / "f", 1, length, sink.sender(), send_file_strategy::automatic, 128 << 10));
        CHECK(sent.value() == length);
        CHECK(sink.finish() == bytes.substr(1, length));
    }
}

TEST_CASE("cancelling send_file_range to a peer that never reads ends it with nothing in flight") {
    temp_dir dir;
    test::write_plain(dir / "f", pattern(4u << 20, 26));
    for (send_file_strategy strategy :
         {send_file_strategy::read_send, send_file_strategy::splice}) {
        CAPTURE(name_of(strategy));
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        io_context ctx;
        result<std::uint64_t> r =
            sync_wait(ctx, send_with_deadline(dir / "f", 4u << 20, fds[0], strategy));
        CHECK(r == std::errc::timed_out);
        CHECK(ctx.stats().ops_in_flight == 0);
        ::close(fds[0]);
        ::close(fds[1]);
    }
}

TEST_CASE("send_file_range under injected EINTR (rate 1) delivers every byte with every strategy") {
    temp_dir dir;
    std::string bytes = pattern((1u << 20) + 777, 22);
    test::write_plain(dir / "f", bytes);
    io_context_options options;
    options.faults = fault_options::parse("seed=15,rate=1,kinds=eintr");
    for (send_file_strategy strategy :
         {send_file_strategy::read_send, send_file_strategy::splice}) {
        CAPTURE(name_of(strategy));
        socket_sink sink(true);
        io_context ctx(options);
        result<std::uint64_t> sent = sync_wait(
            ctx, send_range(dir / "f", 0, bytes.size(), sink.sender(), strategy, 64 * 1024));
        REQUIRE(sent.has_value());
        CHECK(*sent == bytes.size());
        CHECK(sink.finish() == bytes);
        CHECK(ctx.stats().faults_injected > 0);
    }
}
