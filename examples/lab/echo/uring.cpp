// SPDX-License-Identifier: MIT
// lab_echo_uring: the echo job as a hand-written io_uring state machine in raw liburing, no corio:
// the benchmark twin corio must match. Each connection is a context struct whose address is the
// user_data of its one operation in flight; the completion handler looks at the recorded state
// (receiving, sending, closing) to decide the next operation. One submit_and_wait per loop turn;
// one multishot accept (re-armed when a CQE lacks IORING_CQE_F_MORE); the ring flags corio uses.
// Compare with echo/epoll.cpp (readiness instead of completions) and echo/corio.cpp (the same
// operations, with the state in a coroutine frame).
// Try: lab_echo_uring --port 0   (prints `listening on PORT`), then nc 127.0.0.1 PORT
#include "common/lab.hpp"
#include "common/ring.hpp"

#include <liburing.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

/// What a user_data points at: every context starts with its kind.
enum class kind : std::uint8_t { accept, signal, connection };

struct context {
    kind what;
};

// LAB-HANDLER-BEGIN
/// Where a connection is: which of its operations is in flight.
enum class conn_state : std::uint8_t { receiving, sending, closing };

/// A connection's state, recorded by hand between completions.
struct connection : context {
    connection() : context{kind::connection} {}
    int fd = -1;
    conn_state state = conn_state::receiving;
    std::vector<char> buffer;   // the bytes read, echoed from `sent` to `filled`
    std::size_t filled = 0;     // bytes in buffer from the last recv
    std::size_t sent = 0;       // of those, bytes sent so far
    connection* prev = nullptr; // the list of open connections (for shutdown)
    connection* next = nullptr;
};

void start_recv(io_uring& ring, connection& c) {
    c.state = conn_state::receiving;
    io_uring_sqe* sqe = lab::get_sqe(ring);
    io_uring_prep_recv(sqe, c.fd, c.buffer.data(), c.buffer.size(), 0);
    io_uring_sqe_set_data(sqe, &c);
}

void start_send(io_uring& ring, connection& c) {
    c.state = conn_state::sending;
    io_uring_sqe* sqe = lab::get_sqe(ring);
    io_uring_prep_send(sqe, c.fd, c.buffer.data() + c.sent, c.filled - c.sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, &c);
}

void start_close(io_uring& ring, connection& c) {
    c.state = conn_state::closing;
    io_uring_sqe* sqe = lab::get_sqe(ring);
    io_uring_prep_close(sqe, c.fd);
    io_uring_sqe_set_data(sqe, &c);
}

/// The completion of connection `c`'s operation. Returns false when `c` is closed (free it).
bool on_completion(io_uring& ring, connection& c, int res, bool stopping, lab::stats& stats) {
    switch (c.state) {
    case conn_state::receiving:
        if (res <= 0 || stopping)
            break; // EOF, error or shutdown
        stats.bytes_in += static_cast<std::uint64_t>(res);
        if (lab::should_block()) // LAB-BLOCK: the blocking job (docs/blocking.md)
            lab::block_once();   // LAB-BLOCK
        c.filled = static_cast<std::size_t>(res);
        c.sent = 0;
        start_send(ring, c);
        return true;
    case conn_state::sending:
        if (res < 0 || stopping)
            break;
        c.sent += static_cast<std::size_t>(res);
        stats.bytes_out += static_cast<std::uint64_t>(res);
        if (c.sent < c.filled) {
            start_send(ring, c); // a short send: the rest
            return true;
        }
        ++stats.requests;
        start_recv(ring, c);
        return true;
    case conn_state::closing:
        return false;
    }
    start_close(ring, c);
    return true;
}
// LAB-HANDLER-END

struct server {
    lab::options opt;
    io_uring ring{};
    int listener = -1;
    int signal_fd = -1;
    context accept_ctx{kind::accept};
    context signal_ctx{kind::signal};
    signalfd_siginfo siginfo{}; // the signalfd read's buffer
    bool accept_armed = false;
    bool stopping = false;
    std::size_t open = 0;
    connection* connections = nullptr; // list head
    lab::stats stats;

    void arm_accept() {
        io_uring_sqe* sqe = lab::get_sqe(ring);
        io_uring_prep_multishot_accept(sqe, listener, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data(sqe, &accept_ctx);
        accept_armed = true;
    }

    void on_accept(int res, unsigned flags) {
        if (!(flags & IORING_CQE_F_MORE)) {
            accept_armed = false;
            if (!stopping)
                arm_accept();
        }
        if (res < 0)
            return;
        if (stopping || open >= opt.max_connections) {
            ::close(res);
            return;
        }
        auto* c = new connection;
        c->fd = res;
        c->buffer.resize(opt.buffer_size);
        c->next = connections;
        if (connections)
            connections->prev = c;
        connections = c;
        ++open;
        ++stats.connections;
        start_recv(ring, *c);
    }

    void forget(connection* c) {
        (c->prev ? c->prev->next : connections) = c->next;
        if (c->next)
            c->next->prev = c->prev;
        delete c;
        --open;
    }

    void on_signal() {
        stopping = true;
        // Cancel every operation in flight: the accept ends, each connection's recv or send
        // completes with ECANCELED and the connection closes.
        io_uring_sqe* sqe = lab::get_sqe(ring);
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data(sqe, nullptr);
    }

    void run() {
        io_uring_sqe* sqe = lab::get_sqe(ring);
        io_uring_prep_read(sqe, signal_fd, &siginfo, sizeof siginfo, 0);
        io_uring_sqe_set_data(sqe, &signal_ctx);
        arm_accept();
        while (!stopping || open > 0 || accept_armed) {
            io_uring_submit_and_wait(&ring, 1); // one kernel entry per turn: submit and reap
            unsigned head = 0;
            unsigned seen = 0;
            io_uring_cqe* cqe = nullptr;
            io_uring_for_each_cqe(&ring, head, cqe) {
                ++seen;
                auto* ctx = static_cast<context*>(io_uring_cqe_get_data(cqe));
                if (ctx == nullptr)
                    continue; // the shutdown's cancel
                if (ctx->what == kind::accept) {
                    on_accept(cqe->res, cqe->flags);
                } else if (ctx->what == kind::signal) {
                    on_signal();
                } else {
                    auto* c = static_cast<connection*>(ctx);
                    if (!on_completion(ring, *c, cqe->res, stopping, stats))
                        forget(c);
                }
            }
            io_uring_cq_advance(&ring, seen);
        }
    }
};

} // namespace

int main(int argc, char** argv) {
    server srv;
    srv.opt = lab::parse_args(argc, argv, "lab_echo_uring", false);
    srv.signal_fd = lab::stop_signal_fd(false);
    srv.listener = lab::listen_socket(srv.opt, false);
    lab::setup_ring(srv.ring, srv.opt);
    srv.run();
    io_uring_queue_exit(&srv.ring);
    ::close(srv.listener);
    ::close(srv.signal_fd);
    lab::print_stats(srv.stats);
    return 0;
}
