// SPDX-License-Identifier: MIT
// lab_files_asio, lab_files_asio_uring: the file job (protocol: see files/threads.cpp) with
// standalone Asio's C++20 coroutines, one coroutine per connection on a one-thread io_context.
// The handler reads like files/corio.cpp; how the file is read is what an Asio user gets:
// - lab_files_asio (Asio's default epoll reactor): Asio has no file I/O there, and the typical
//   Asio user calls a blocking pread() in the handler (as files/epoll.cpp does): it BLOCKS THE
//   WHOLE LOOP while the disk works. The way out, posting each read to an asio::thread_pool and
//   back, is more code that few servers write.
// - lab_files_asio_uring (ASIO_HAS_IO_URING + ASIO_DISABLE_EPOLL): asio::random_access_file's
//   async_read_some_at goes through Asio's ring, so a read waiting for the disk suspends only its
//   connection. Asio opens and closes files with blocking open()/close() (it has no async open),
//   so the file is opened with openat() here (for --root and --direct) and handed to it.
// Both open per request and close after it; fstat() reads the in-memory inode (as in all styles).
// Try: lab_files_asio --root DIR --port 0, then printf 'GET name 0 100\n' | nc 127.0.0.1 PORT
#include "common/asio.hpp"
#include "common/lab.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

namespace {

using asio::ip::tcp;
#if defined(ASIO_HAS_IO_URING)
constexpr const char* k_program = "lab_files_asio_uring";
#else
constexpr const char* k_program = "lab_files_asio";
#endif

// LAB-HANDLER-BEGIN
/// Sends all of `text`, counting it. False when the peer is gone.
asio::awaitable<bool> send_text(tcp::socket* conn, std::string_view text, lab::stats* stats) {
    auto [error, sent] = co_await asio::async_write(*conn, asio::buffer(text), lab::use_nothrow);
    stats->bytes_out += sent;
    co_return !error;
}

#if defined(ASIO_HAS_IO_URING)
/// Reads `step` of `file` into `data` through Asio's ring: bytes read, 0 on an error.
asio::awaitable<std::size_t> read_file(asio::random_access_file* file, lab::read_step step,
                                       lab::file_buffer* data) {
    auto [error, got] = co_await file->async_read_some_at(
        step.at, asio::buffer(data->data(), step.length), lab::use_nothrow);
    co_return error ? 0 : got;
}
#else
/// Reads `step` of `file` into `data` with a blocking pread(): bytes read, 0 on an error.
std::size_t read_file(int file, lab::read_step step, lab::file_buffer* data) {
    // The typical Asio-on-epoll read: blocking, in the handler. The whole loop waits for the disk.
    ssize_t got = ::pread(file, data->data(), step.length, static_cast<off_t>(step.at));
    return got < 0 ? 0 : static_cast<std::size_t>(got);
}
#endif

/// Answers one request. False when the connection must close.
asio::awaitable<bool> answer(tcp::socket* conn, lab::file_request req, const lab::options* opt,
                             int root, lab::file_buffer* data, lab::stats* stats) {
    ++stats->requests;
    if (!req.error.empty()) {
        bool sent = co_await send_text(conn, req.error, stats);
        co_return sent;
    }
    int fd = ::openat(root, std::string(req.name).c_str(), lab::file_open_flags(*opt));
    if (fd < 0) {
        bool sent = co_await send_text(conn, lab::open_error(errno), stats);
        co_return sent;
    }
#if defined(ASIO_HAS_IO_URING)
    asio::random_access_file file(conn->get_executor(), fd); // closes fd when it goes
#else
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } file{fd};
#endif
    struct ::stat st {};
    std::uint64_t left = 0;
    std::string_view reply =
        ::fstat(fd, &st) == 0 ? lab::plan_reply(st, req, left) : lab::open_error(errno);
    char head[32];
    if (reply.empty())
        reply = {head, lab::format_ok(head, left)};
    bool ok = co_await send_text(conn, reply, stats);
    for (std::uint64_t pos = req.offset; ok && left > 0;) {
        lab::read_step step = lab::next_read(*opt, pos, left);
#if defined(ASIO_HAS_IO_URING)
        std::size_t got = co_await read_file(&file, step, data);
#else
        std::size_t got = read_file(fd, step, data);
#endif
        std::size_t chunk = lab::usable(step, got, left);
        if (chunk == 0)
            break; // a read error, or the file shrank under us: close the connection
        ok = co_await send_text(conn, {data->data() + step.skip, chunk}, stats);
        pos += chunk;
        left -= chunk;
    }
    co_return ok&& left == 0;
}

/// One connection, start to end: read request lines, answer each in order, until EOF.
asio::awaitable<void> serve(tcp::socket conn, const lab::options* opt, int root,
                            lab::stats* stats) {
    char requests[lab::k_request_buffer];
    std::size_t have = 0;
    lab::file_buffer data(*opt);
    for (;;) {
        auto* nl = static_cast<char*>(std::memchr(requests, '\n', have));
        std::size_t line_length = nl ? static_cast<std::size_t>(nl - requests) : have;
        if (line_length > lab::k_max_request_line) {
            bool sent = co_await send_text(&conn, lab::k_too_long, stats);
            (void)sent;
            break;
        }
        if (!nl) {
            auto space = asio::buffer(requests + have, sizeof requests - have);
            auto [error, n] = co_await conn.async_read_some(space, lab::use_nothrow);
            if (error)
                break; // asio::error::eof included
            stats->bytes_in += n;
            have += n;
            continue;
        }
        lab::file_request req = lab::parse_request({requests, line_length});
        bool ok = co_await answer(&conn, req, opt, root, &data, stats);
        if (!ok)
            break;
        have -= line_length + 1;
        std::memmove(requests, nl + 1, have);
    }
} // the socket closes with the frame
// LAB-HANDLER-END

/// A connection's coroutine with its place on the live list.
asio::awaitable<void> connection(tcp::socket conn, const lab::options* opt, int root,
                                 lab::stats* stats, lab::live_list* live) {
    lab::live_connection counted(live, conn.native_handle());
    co_await serve(std::move(conn), opt, root, stats);
}

/// Accepts until the stop signal closes the acceptor, one coroutine per connection.
asio::awaitable<void> accept_loop(tcp::acceptor* acceptor, const lab::options* opt, int root,
                                  lab::stats* stats, lab::live_list* live) {
    for (;;) {
        auto [error, conn] = co_await acceptor->async_accept(lab::use_nothrow);
        if (!acceptor->is_open())
            break; // the stop signal closed it
        if (error || live->size >= opt->max_connections)
            continue; // EMFILE and the like, or over the limit: the socket closes here
        ++stats->connections;
        asio::co_spawn(acceptor->get_executor(),
                       connection(std::move(conn), opt, root, stats, live), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    lab::options opt = lab::parse_args(argc, argv, k_program, true);
    int root = lab::open_root(opt);
    int listen_fd = lab::listen_socket(opt, true);
    lab::stats stats;
    lab::live_list live; // the connection coroutines alive
    try {
        asio::io_context ctx(1); // concurrency hint 1: one thread, Asio elides its locking
        asio::signal_set signals(ctx, SIGINT, SIGTERM);
        tcp::acceptor acceptor(ctx, tcp::v4(), listen_fd);
        lab::stop_on_signals(signals, acceptor, live);
        asio::co_spawn(ctx, accept_loop(&acceptor, &opt, root, &stats, &live), asio::detached);
        ctx.run(); // returns when the stop signal ended every connection
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", k_program, e.what());
        return 1;
    }
    ::close(root);
    lab::print_stats(stats);
    return 0;
}
