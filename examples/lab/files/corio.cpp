// SPDX-License-Identifier: MIT
// lab_files_corio: the file job on corio (protocol: see files/threads.cpp). The handler reads
// like files/threads.cpp - parse a line, open, read, send, close - but the file is opened, read
// and closed through the same io_uring as the sockets, so a read waiting for the disk suspends
// only its own connection (compare files/epoll.cpp, whose blocking pread stalls everyone, and
// files/uring.cpp, the same ring operations with the state kept by hand). Files are opened per
// request and closed after it. fstat() on the open fd reads the in-memory inode: it never waits
// for the disk (all four styles call it).
// Try: lab_files_corio --root DIR --port 0, then printf 'GET name 0 100\n' | nc 127.0.0.1 PORT
#include <corio/corio.hpp>
#include "common/lab.hpp"

#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <string_view>

namespace net = corio::net;

namespace {

// LAB-HANDLER-BEGIN
/// Sends all of `text`, counting it. False when the peer is gone.
corio::task<bool> send_text(net::tcp_stream* conn, std::string_view text, lab::stats* stats) {
    corio::result<std::size_t> sent = co_await conn->send_all(text);
    if (!sent)
        co_return false;
    stats->bytes_out += *sent;
    co_return true;
}

/// Answers one request. False when the connection must close.
corio::task<bool> answer(net::tcp_stream* conn, lab::file_request req, const lab::options* opt,
                         int root, lab::file_buffer* data, lab::stats* stats) {
    ++stats->requests;
    if (!req.error.empty()) {
        bool sent = co_await send_text(conn, req.error, stats);
        co_return sent;
    }
    corio::result<corio::file> file =
        co_await corio::file::open_at(root, std::string(req.name), lab::file_open_flags(*opt));
    if (!file) {
        bool sent = co_await send_text(conn, lab::open_error(file.error().value()), stats);
        co_return sent;
    }
    struct ::stat st {};
    std::uint64_t left = 0;
    std::string_view reply = ::fstat(file->native_handle(), &st) == 0
                                 ? lab::plan_reply(st, req, left)
                                 : lab::open_error(errno);
    char head[32];
    if (reply.empty())
        reply = {head, lab::format_ok(head, left)};
    bool ok = co_await send_text(conn, reply, stats);
    for (std::uint64_t pos = req.offset; ok && left > 0;) {
        lab::read_step step = lab::next_read(*opt, pos, left);
        auto into = std::as_writable_bytes(std::span(data->data(), step.length));
        corio::result<std::size_t> got = co_await file->read_some_at(into, step.at);
        std::size_t chunk = lab::usable(step, got ? *got : 0, left);
        if (chunk == 0)
            break; // a read error, or the file shrank under us: close the connection
        ok = co_await send_text(conn, {data->data() + step.skip, chunk}, stats);
        pos += chunk;
        left -= chunk;
    }
    corio::result<void> closed = co_await file->close();
    (void)closed;
    co_return ok&& left == 0;
}

/// One connection, start to end: read request lines, answer each in order, until EOF.
corio::task<void> serve(net::tcp_stream conn, const lab::options* opt, int root,
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
            auto space = std::span(requests + have, sizeof requests - have);
            corio::result<std::size_t> n = co_await conn.recv_some(space);
            if (!n || *n == 0)
                break;
            stats->bytes_in += *n;
            have += *n;
            continue;
        }
        lab::file_request req = lab::parse_request({requests, line_length});
        bool ok = co_await answer(&conn, req, opt, root, &data, stats);
        if (!ok)
            break;
        have -= line_length + 1;
        std::memmove(requests, nl + 1, have);
    }
    corio::result<void> closed = co_await conn.close();
    (void)closed;
}
// LAB-HANDLER-END

/// SIGINT/SIGTERM: closing the listener ends the accept loop.
corio::task<void> watch_signals(int signal_fd, net::tcp_listener* listener) {
    signalfd_siginfo info{};
    auto prep = [signal_fd, &info](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, signal_fd, &info, sizeof info, 0);
    };
    corio::result<corio::uring_completion> got = co_await corio::submit(prep);
    (void)got; // a signal, or cancelled: either way the server goes down
    corio::result<void> closed = co_await listener->close();
    (void)closed;
}

corio::task<int> run_server(lab::options opt, int root, int listen_fd, int signal_fd) {
    net::tcp_listener listener(listen_fd);
    lab::stats stats;
    corio::task_scope control;     // the signal watcher
    corio::task_scope connections; // one task per connection
    control.spawn(watch_signals(signal_fd, &listener));
    {
        net::tcp_accept_stream incoming = listener.accept_multishot();
        for (;;) {
            corio::result<net::tcp_stream> conn = co_await incoming.next();
            if (!conn)
                break; // the listener was closed: stopping
            if (connections.size() >= opt.max_connections)
                continue; // destroying the stream closes it
            ++stats.connections;
            connections.spawn(serve(std::move(*conn), &opt, root, &stats));
        }
    }
    connections.request_stop(); // cancels every connection's operations; each closes its socket
    co_await connections.join();
    control.request_stop();
    co_await control.join();
    stats.frame_bytes_peak = corio::io_context::current().stats().peak_frame_bytes;
    lab::print_stats(stats);
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    lab::options opt = lab::parse_args(argc, argv, "lab_files_corio", true);
    int root = lab::open_root(opt);
    int signal_fd = lab::stop_signal_fd(false); // before the offload pool can start a thread
    int listen_fd = lab::listen_socket(opt, false);
    try {
        corio::io_context ctx({.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries});
        int status = corio::sync_wait(ctx, run_server(opt, root, listen_fd, signal_fd));
        ::close(signal_fd);
        ::close(root);
        return status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lab_files_corio: %s\n", e.what());
        return 1;
    }
}
