// SPDX-License-Identifier: MIT
// lab_files_uring: the file job as a hand-written io_uring state machine in raw liburing, no
// corio (protocol: see files/threads.cpp). Socket and disk I/O go through the same ring:
// IORING_OP_OPENAT, IORING_OP_READ and IORING_OP_CLOSE for the file, RECV and SEND for the
// socket, so a read that waits for the disk stalls only its own connection. Each connection is a
// context struct whose address is the user_data of its one operation in flight; its state enum
// says which operation that is. Files are opened per request and closed after it. Ring set-up,
// multishot accept and shutdown as in echo/uring.cpp. fstat() on the freshly opened fd is a plain
// syscall: it reads the in-memory inode and never waits for the disk (all four styles use it).
// Compare with files/epoll.cpp (a blocking pread inside the loop) and files/corio.cpp.
// Try: lab_files_uring --root DIR --port 0, then printf 'GET name 0 100\n' | nc 127.0.0.1 PORT
#include "common/lab.hpp"
#include "common/ring.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace {

/// What a user_data points at: every context starts with its kind.
enum class kind : std::uint8_t { accept, signal, connection };

struct context {
    kind what;
};

// LAB-HANDLER-BEGIN
/// Which operation of a connection is in flight.
enum class conn_state : std::uint8_t {
    receiving,
    opening,
    sending,
    reading,
    closing_file,
    closing
};

/// A connection's state, recorded by hand between completions.
struct connection : context {
    explicit connection(const lab::options& opt) : context{kind::connection}, data(opt) {}
    int fd = -1;
    conn_state state = conn_state::receiving;
    char requests[lab::k_request_buffer]; // request bytes received, not yet answered
    std::size_t have = 0;                 // bytes in `requests`
    lab::file_request req;                // the request being answered (name: see `path`)
    std::string path;                     // its file name, for the OPENAT in flight
    int file = -1;                        // the file of the reply in progress
    std::uint64_t pos = 0;                // its next byte to send
    std::uint64_t left = 0;               // bytes of it still to send
    lab::read_step step;                  // the READ in flight
    lab::file_buffer data;                // file bytes read, being sent
    char head[32];                        // an `OK <n>\n` being sent
    const char* out = nullptr;            // what is being sent now
    std::size_t out_left = 0;             // bytes of it not sent yet
    bool close_after = false;             // close once `out` is sent (after `ERR too long`)
    connection* prev = nullptr;           // the list of open connections (for shutdown)
    connection* next = nullptr;
};

/// Everything a connection's handler needs besides the connection.
struct env {
    io_uring& ring;
    int root;
    const lab::options& opt;
    lab::stats& stats;
};

io_uring_sqe* sqe_for(env& e, connection& c, conn_state state) {
    c.state = state;
    io_uring_sqe* sqe = lab::get_sqe(e.ring);
    io_uring_sqe_set_data(sqe, &c);
    return sqe;
}

void start_send(env& e, connection& c, std::string_view what) {
    c.out = what.data();
    c.out_left = what.size();
    io_uring_prep_send(sqe_for(e, c, conn_state::sending), c.fd, c.out, c.out_left, MSG_NOSIGNAL);
}

/// The output has drained: the next chunk, the end of the reply, the next request or more input.
void proceed(env& e, connection& c) {
    if (c.close_after)
        return io_uring_prep_close(sqe_for(e, c, conn_state::closing), c.fd);
    if (c.left > 0) {
        c.step = lab::next_read(e.opt, c.pos, c.left);
        io_uring_sqe* sqe = sqe_for(e, c, conn_state::reading);
        return io_uring_prep_read(sqe, c.file, c.data.data(), static_cast<unsigned>(c.step.length),
                                  c.step.at);
    }
    if (c.file >= 0)
        return io_uring_prep_close(sqe_for(e, c, conn_state::closing_file), c.file);
    auto* nl = static_cast<char*>(std::memchr(c.requests, '\n', c.have));
    std::size_t line_length = nl ? static_cast<std::size_t>(nl - c.requests) : c.have;
    if (line_length > lab::k_max_request_line) {
        c.close_after = true;
        return start_send(e, c, lab::k_too_long);
    }
    if (!nl) {
        io_uring_sqe* sqe = sqe_for(e, c, conn_state::receiving);
        return io_uring_prep_recv(sqe, c.fd, c.requests + c.have, sizeof c.requests - c.have, 0);
    }
    ++e.stats.requests;
    c.req = lab::parse_request({c.requests, line_length});
    c.path.assign(c.req.name); // the request bytes move below; OPENAT reads its own copy
    c.have -= line_length + 1;
    std::memmove(c.requests, nl + 1, c.have);
    if (!c.req.error.empty())
        return start_send(e, c, c.req.error);
    io_uring_sqe* sqe = sqe_for(e, c, conn_state::opening);
    io_uring_prep_openat(sqe, e.root, c.path.c_str(), lab::file_open_flags(e.opt), 0);
}

/// The completion of connection `c`'s operation. Returns false when `c` is closed (free it).
bool on_completion(env& e, connection& c, int res, bool stopping) {
    if (c.state == conn_state::closing)
        return false;
    if (c.state == conn_state::closing_file)
        c.file = -1;
    if (c.state == conn_state::opening && res >= 0)
        c.file = res;
    bool failed = (c.state == conn_state::receiving && res <= 0) ||
                  (c.state == conn_state::sending && res < 0) ||
                  (c.state == conn_state::reading && // an error, or the file shrank under us
                   (res < 0 || lab::usable(c.step, static_cast<std::size_t>(res), c.left) == 0));
    if (failed || stopping) { // EOF, an error or shutdown: close the connection
        if (c.file >= 0)
            ::close(c.file); // leaving early: the file goes the short way
        io_uring_prep_close(sqe_for(e, c, conn_state::closing), c.fd);
        return true;
    }
    switch (c.state) {
    case conn_state::receiving:
        e.stats.bytes_in += static_cast<std::uint64_t>(res);
        c.have += static_cast<std::size_t>(res);
        break;
    case conn_state::opening: {
        if (res < 0) {
            start_send(e, c, lab::open_error(-res));
            return true;
        }
        struct ::stat st {};
        c.left = 0;
        std::string_view refused =
            ::fstat(c.file, &st) == 0 ? lab::plan_reply(st, c.req, c.left) : lab::open_error(errno);
        c.pos = c.req.offset;
        if (refused.empty())
            refused = {c.head, lab::format_ok(c.head, c.left)};
        start_send(e, c, refused);
        return true;
    }
    case conn_state::sending:
        c.out += res;
        c.out_left -= static_cast<std::size_t>(res);
        e.stats.bytes_out += static_cast<std::uint64_t>(res);
        if (c.out_left > 0) { // a short send: the rest
            io_uring_prep_send(sqe_for(e, c, conn_state::sending), c.fd, c.out, c.out_left,
                               MSG_NOSIGNAL);
            return true;
        }
        break;
    case conn_state::reading: {
        std::size_t chunk = lab::usable(c.step, static_cast<std::size_t>(res), c.left);
        c.pos += chunk;
        c.left -= chunk;
        start_send(e, c, {c.data.data() + c.step.skip, chunk});
        return true;
    }
    case conn_state::closing_file:
    case conn_state::closing:
        break;
    }
    proceed(e, c);
    return true;
}
// LAB-HANDLER-END

struct server {
    lab::options opt;
    io_uring ring{};
    int root = -1;
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

    void on_accept(env& e, int res, unsigned flags) {
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
        auto* c = new connection(opt);
        c->fd = res;
        c->next = connections;
        if (connections)
            connections->prev = c;
        connections = c;
        ++open;
        ++stats.connections;
        proceed(e, *c); // nothing buffered yet: a RECV
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
        // Cancel every operation in flight: the accept ends, each connection's operation
        // completes (with ECANCELED, mostly) and the connection closes.
        io_uring_sqe* sqe = lab::get_sqe(ring);
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data(sqe, nullptr);
    }

    void run() {
        env e{ring, root, opt, stats};
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
                    on_accept(e, cqe->res, cqe->flags);
                } else if (ctx->what == kind::signal) {
                    on_signal();
                } else {
                    auto* c = static_cast<connection*>(ctx);
                    if (!on_completion(e, *c, cqe->res, stopping))
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
    srv.opt = lab::parse_args(argc, argv, "lab_files_uring", true);
    srv.root = lab::open_root(srv.opt);
    srv.signal_fd = lab::stop_signal_fd(false);
    srv.listener = lab::listen_socket(srv.opt, false);
    lab::setup_ring(srv.ring, srv.opt);
    srv.run();
    io_uring_queue_exit(&srv.ring);
    ::close(srv.listener);
    ::close(srv.signal_fd);
    ::close(srv.root);
    lab::print_stats(srv.stats);
    return 0;
}
