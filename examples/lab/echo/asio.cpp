// SPDX-License-Identifier: MIT
// lab_echo_asio, lab_echo_asio_uring: the echo job written the way an Asio user writes it today,
// with standalone Asio's C++20 coroutines (asio::awaitable, co_spawn, one-thread io_context).
// The handler reads like echo/corio.cpp: the state lives in the coroutine frame too. The
// difference is underneath: lab_echo_asio runs on Asio's default epoll reactor (readiness, then
// the non-blocking call: compare echo/epoll.cpp), lab_echo_asio_uring is the same source built
// with ASIO_HAS_IO_URING + ASIO_DISABLE_EPOLL, Asio's io_uring backend (a ring set up without
// flags, 16384 entries: --sq-entries and --cq-entries are not Asio's knobs and are ignored).
// Errors come back as values through as_tuple (no exception per EOF or reset). SIGINT/SIGTERM
// arrive through an asio::signal_set, close the acceptor and shut every connection down
// (common/asio.hpp); run() returns when the last coroutine ended.
// Try: lab_echo_asio --port 0   (prints `listening on PORT`), then nc 127.0.0.1 PORT
#include "common/asio.hpp"
#include "common/lab.hpp"

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using asio::ip::tcp;
#if defined(ASIO_HAS_IO_URING)
constexpr const char* k_program = "lab_echo_asio_uring";
#else
constexpr const char* k_program = "lab_echo_asio";
#endif

// LAB-HANDLER-BEGIN
/// One connection, start to end: read, write it all back, repeat until EOF or an error.
asio::awaitable<void> echo(tcp::socket conn, std::size_t buffer_size, lab::stats* stats) {
    std::vector<char> buffer(buffer_size);
    for (;;) {
        auto [read_error, n] =
            co_await conn.async_read_some(asio::buffer(buffer), lab::use_nothrow);
        if (read_error)
            break; // asio::error::eof included
        stats->bytes_in += n;
        if (lab::should_block()) // LAB-BLOCK: the blocking job (docs/blocking.md)
            lab::block_once();   // LAB-BLOCK
        auto [write_error, sent] =
            co_await asio::async_write(conn, asio::buffer(buffer.data(), n), lab::use_nothrow);
        if (write_error)
            break;
        stats->bytes_out += sent;
        ++stats->requests;
    }
} // the socket closes with the frame
// LAB-HANDLER-END

/// A connection's coroutine with its place on the live list.
asio::awaitable<void> connection(tcp::socket conn, std::size_t buffer_size, lab::stats* stats,
                                 lab::live_list* live) {
    lab::live_connection counted(live, conn.native_handle());
    co_await echo(std::move(conn), buffer_size, stats);
}

/// Accepts until the stop signal closes the acceptor, one coroutine per connection.
asio::awaitable<void> accept_loop(tcp::acceptor* acceptor, lab::options opt, lab::stats* stats,
                                  lab::live_list* live) {
    for (;;) {
        auto [error, conn] = co_await acceptor->async_accept(lab::use_nothrow);
        if (!acceptor->is_open())
            break; // the stop signal closed it
        if (error || live->size >= opt.max_connections)
            continue; // EMFILE and the like, or over the limit: the socket closes here
        ++stats->connections;
        asio::co_spawn(acceptor->get_executor(),
                       connection(std::move(conn), opt.buffer_size, stats, live), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    lab::options opt = lab::parse_args(argc, argv, k_program, false);
    int listen_fd = lab::listen_socket(opt, true);
    lab::stats stats;
    lab::live_list live; // the connection coroutines alive
    try {
        asio::io_context ctx(1); // concurrency hint 1: one thread, Asio elides its locking
        asio::signal_set signals(ctx, SIGINT, SIGTERM);
        tcp::acceptor acceptor(ctx, tcp::v4(), listen_fd);
        lab::stop_on_signals(signals, acceptor, live);
        asio::co_spawn(ctx, accept_loop(&acceptor, opt, &stats, &live), asio::detached);
        ctx.run(); // returns when the stop signal ended every connection
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", k_program, e.what());
        return 1;
    }
    lab::print_stats(stats);
    return 0;
}
