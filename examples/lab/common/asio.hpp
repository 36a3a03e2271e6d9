// SPDX-License-Identifier: MIT
// What the Asio servers (examples/lab/{echo,files}/asio.cpp) share and what is not under
// comparison: the completion token, the live-connection list and the graceful stop.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <sys/socket.h>

#include <cstddef>
#include <system_error>

namespace lab {

/// Completion token: co_await yields (error_code, result...) instead of throwing, so an EOF or a
/// reset is a value (Asio 1.22 keeps as_tuple in experimental; asio::as_tuple from 1.24 on).
constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

/// The connections alive, for the stop signal to end them and for --max-connections.
struct live_list;

/// One connection's entry in the list, for as long as its coroutine frame holds it.
struct live_connection {
    live_connection(live_list* list, int fd);
    ~live_connection();
    live_connection(const live_connection&) = delete;
    live_connection& operator=(const live_connection&) = delete;

    live_list* list;       // the list it is on
    int fd;                // the socket, for shutdown() at stop
    live_connection* prev; // neighbours on the list (intrusive: no allocation)
    live_connection* next;
};

struct live_list {
    live_connection* head = nullptr; // the newest connection
    std::size_t size = 0;            // connections on the list
    bool stopping = false;           // set by shutdown_all(): a connection joining later ends too

    /// Shuts every connection's socket down: each pending read completes (EOF, or an error for a
    /// write) and its coroutine ends, closing the socket.
    void shutdown_all() {
        stopping = true;
        for (live_connection* c = head; c != nullptr; c = c->next)
            ::shutdown(c->fd, SHUT_RDWR);
    }
};

inline live_connection::live_connection(live_list* l, int socket)
    : list(l), fd(socket), prev(nullptr), next(l->head) {
    if (next != nullptr)
        next->prev = this;
    list->head = this;
    ++list->size;
    if (list->stopping) // spawned before the stop signal, started after it
        ::shutdown(fd, SHUT_RDWR);
}

inline live_connection::~live_connection() {
    (prev != nullptr ? prev->next : list->head) = next;
    if (next != nullptr)
        next->prev = prev;
    --list->size;
}

/// SIGINT/SIGTERM stop the server gracefully: the acceptor closes (the accept loop ends) and
/// every connection is shut down, so io_context::run() returns once the last coroutine ended,
/// with no operation pending.
/// NOTE: not Asio's examples' `signals.async_wait(... ctx.stop())`: destroying an io_context with
/// an accept still pending on Asio 1.22's io_uring backend reads a freed socket service (ASan:
/// heap-use-after-free in io_uring_socket_move_accept_op at ~io_context).
inline void stop_on_signals(asio::signal_set& signals, asio::ip::tcp::acceptor& acceptor,
                            live_list& live) {
    signals.async_wait([&acceptor, &live](std::error_code error, int) {
        if (error)
            return;
        std::error_code ignored;
        acceptor.close(ignored);
        live.shutdown_all();
    });
}

} // namespace lab
