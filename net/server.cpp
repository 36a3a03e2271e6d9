// SPDX-License-Identifier: MIT
// net::server: the accept loop, the connection tasks, the signal watcher, the out-of-fds report
// and the drain (see server.hpp).
#include <corio/net/server.hpp>

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/when_any.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <utility>

namespace corio::net {

// ----- connection -----

server::connection::connection(server* srv, int fd) noexcept : m_server(srv), m_fd(fd) {
    m_next = srv->m_head;
    if (m_next)
        m_next->m_prev = this;
    srv->m_head = this;
}

server::connection::~connection() {
    (m_prev ? m_prev->m_next : m_server->m_head) = m_next;
    if (m_next)
        m_next->m_prev = m_prev;
    --m_server->m_open;
    ++m_server->m_closed;
    m_server->m_room.set(); // limit_policy::pause: the accept loop may go on
}

void server::connection::set_idle(bool idle) noexcept {
    m_idle = idle;
    if (idle && m_server->m_draining)
        shut_read();
}

bool server::connection::is_draining() const noexcept {
    return m_server->m_draining;
}

void server::connection::count_timeout() noexcept {
    ++m_server->m_timed_out;
}

void server::connection::shut_read() noexcept {
    if (m_fd >= 0)
        ::shutdown(m_fd, SHUT_RD); // a pending recv completes with 0; never blocks
}

// ----- server -----

server::server(tcp_listener& listener, handler_type handler, server_options options)
    : m_listener(&listener), m_handler(std::move(handler)), m_options(std::move(options)) {}

namespace {
/// Adapts a handler that takes the stream only.
struct stream_only_handler {
    std::function<task<void>(tcp_stream)> m_handler; // the user's handler
    task<void> operator()(tcp_stream s, server::connection*) const {
        return m_handler(std::move(s));
    }
};
} // namespace

server::server(tcp_listener& listener, std::function<task<void>(tcp_stream)> handler,
               server_options options)
    : server(listener, handler_type(stream_only_handler{std::move(handler)}), std::move(options)) {}

server::server(handler_type handler, server_options options)
    : m_listener(nullptr), m_handler(std::move(handler)), m_options(std::move(options)) {}

server::~server() {
    assert(!m_running && "a net::server destroyed while run() is in progress");
}

server_stats server::stats() const noexcept {
    server_stats s;
    s.connections = m_open;
    s.accepted = m_accepted;
    s.refused = m_refused;
    s.closed = m_closed;
    s.timed_out = m_timed_out;
    s.handler_errors = m_handler_errors;
    s.accept_backoffs = accept_backoffs();
    s.out_of_fds = m_out_of_fds;
    s.handed_off = m_handed_off;
    s.adopted = m_adopted;
    s.draining = m_draining;
    s.drain_timed_out = m_drain_timed_out;
    return s;
}

std::uint64_t server::accept_backoffs() const noexcept {
    return m_incoming ? m_incoming->stats().backoffs : m_backoffs_at_end;
}

void server::log(std::string_view line) const {
    if (m_options.log) {
        m_options.log(line);
        return;
    }
    std::fprintf(stderr, "%s: %.*s\n", m_options.name.c_str(), static_cast<int>(line.size()),
                 line.data());
}

void server::begin_drain(int signo) noexcept {
    if (m_draining)
        return;
    m_draining = true;
    if (m_options.on_drain)
        m_options.on_drain(signo);
    // Stop listening now, before an idle connection sees its EOF: a client that saw it and
    // reconnects is refused rather than left in a backlog that is about to be reset. A listening
    // socket shut for reading leaves the listen state at once (the armed accept then ends with
    // an error); run() closes the fd afterwards.
    if (m_listener && m_listener->is_open())
        ::shutdown(m_listener->native_handle(), SHUT_RD);
    m_drain_begun.set();
    for (connection* c = m_head; c != nullptr; c = c->m_next)
        if (c->m_idle)
            c->shut_read();
    m_accepting.request_stop(); // the accept loop ends; run() closes the listener
}

task<void> server::connection_main(server* self, tcp_stream stream) {
    connection self_view(self, stream.native_handle());
    try {
        task<void> handling = self->m_handler(std::move(stream), &self_view);
        co_await std::move(handling);
    } catch (const std::exception& e) {
        ++self->m_handler_errors;
        self->log(std::string("connection handler failed: ") + e.what());
    } catch (...) {
        ++self->m_handler_errors;
        self->log("connection handler failed: non-standard exception");
    }
    self_view.m_fd = -1; // the handler's stream is gone: never shut a reused fd number
}

task<void> server::refuse_main(server* self, tcp_stream stream) {
    try {
        task<void> refusing = self->m_options.refuse(std::move(stream));
        co_await std::move(refusing);
    } catch (const std::exception& e) {
        self->log(std::string("refusing a connection failed: ") + e.what());
    }
}

task<void> server::accept_loop(server* self) {
    tcp_accept_stream incoming = self->m_listener->accept_multishot(self->m_options.accept_queue);
    self->m_incoming = &incoming;
    const server_options& o = self->m_options;
    for (;;) {
        if (o.on_limit == limit_policy::pause && self->m_open >= o.max_connections) {
            self->m_room.reset();
            auto waiting = self->m_room.wait();
            result<void> room = co_await waiting;
            if (!room)
                break; // the drain (or the caller) cancelled accepting
            continue;
        }
        result<tcp_stream> conn = co_await incoming.next();
        if (!conn) {
            if (!self->m_draining && conn != std::errc::operation_canceled)
                self->log("accept: " + conn.error().message());
            break; // drained, cancelled, or the listener broke
        }
        if (o.hand_off && o.hand_off(*conn)) {
            ++self->m_handed_off;
            continue;
        }
        self->take(std::move(*conn));
    }
    self->m_backoffs_at_end = incoming.stats().backoffs;
    self->m_incoming = nullptr;
}

void server::take(tcp_stream stream) {
    ++m_accepted;
    if (m_open >= m_options.max_connections) {
        ++m_refused; // bounded memory: refuse rather than grow
        if (m_options.on_limit == limit_policy::refuse && m_options.refuse)
            m_connections.spawn(refuse_main(this, std::move(stream)));
        return; // otherwise destroying the stream closes it
    }
    ++m_open;
    m_connections.spawn(connection_main(this, std::move(stream)));
}

bool server::adopt(tcp_stream stream) {
    if (m_draining || m_ran)
        return false; // the stream closes here
    ++m_adopted;
    take(std::move(stream));
    return true;
}

task<void> server::wait_for_drain(server* self) {
    auto waiting = self->m_drain_begun.wait();
    result<void> begun = co_await waiting;
    (void)begun; // the drain, or run() cancelled: either way accepting is over
}

void server::report_now(std::chrono::steady_clock::time_point now) {
    std::uint64_t refused = m_out_of_fds - m_reported_out_of_fds;
    std::uint64_t backoffs = accept_backoffs();
    std::uint64_t paused = backoffs - m_reported_backoffs;
    if ((refused == 0 && paused == 0) || now - m_last_report < m_options.report_interval)
        return;
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    std::string line = "out of file descriptors (RLIMIT_NOFILE " +
                       std::to_string(static_cast<unsigned long long>(limit.rlim_cur)) + "): ";
    if (!m_options.out_of_fds_what.empty())
        line += std::to_string(refused) + " " + m_options.out_of_fds_what + ", ";
    line += "accepting paused " + std::to_string(paused) + " times since the last report";
    log(line);
    m_reported_out_of_fds = m_out_of_fds;
    m_reported_backoffs = backoffs;
    m_last_report = now;
}

task<void> server::report_out_of_fds(server* self) {
    // A tick a quarter of the interval: a report is at most that late.
    auto tick = std::max(self->m_options.report_interval / 4, std::chrono::milliseconds(1));
    for (;;) {
        result<void> slept = co_await sleep_for(tick);
        if (!slept)
            co_return;
        self->report_now(std::chrono::steady_clock::now());
    }
}

task<void> server::watch_signals(server* self) {
    int stops = 0; // SIGINT/SIGTERM seen
    for (;;) {
        auto waiting = self->m_options.signals->wait();
        result<int> signo = co_await std::move(waiting);
        if (!signo) {
            if (signo == std::errc::operation_canceled)
                co_return;
            // Better than a server no signal can stop: the default action ends the process.
            self->log("waiting for signals failed: " + signo.error().message() +
                      "; SIGINT and SIGTERM now end the process without a drain");
            sigset_t stop;
            sigemptyset(&stop);
            sigaddset(&stop, SIGINT);
            sigaddset(&stop, SIGTERM);
            pthread_sigmask(SIG_UNBLOCK, &stop, nullptr);
            co_return;
        }
        if (*signo == SIGUSR1) {
            if (self->m_options.on_stats) {
                task<void> printing = self->m_options.on_stats();
                co_await std::move(printing);
            }
            continue;
        }
        if (*signo != SIGINT && *signo != SIGTERM) {
            self->log("ignoring signal " + std::to_string(*signo));
            continue;
        }
        if (++stops == 1) {
            self->begin_drain(*signo);
            continue;
        }
        if (self->m_options.exit_on_second_signal) {
            std::printf("signal %d again: exiting without draining\n", *signo);
            std::fflush(stdout);
            std::_Exit(128 + *signo);
        }
        self->log("signal " + std::to_string(*signo) + " again: cancelling the connections");
        self->m_connections.request_stop();
    }
}

task<void> server::join_connections(server* self) {
    co_await self->m_connections.join();
}

task<server_stats> server::run() {
    server* self = this;
    self->m_running = true;
    auto on_token = [self] { self->drain(); };
    std::optional<stop_callback<decltype(on_token)>> drain_on_token;
    drain_on_token.emplace(self->m_options.drain_token, on_token);
    task_scope signal_scope; // to the very end: a second signal acts during the whole drain
    if (self->m_options.signals)
        signal_scope.spawn(watch_signals(self));
    if (self->m_options.report_interval.count() > 0)
        self->m_background.spawn(report_out_of_fds(self));
    self->m_accepting.spawn(self->m_listener ? accept_loop(self) : wait_for_drain(self));

    co_await self->m_accepting.join();
    self->begin_drain(0); // no-op when a drain ended accepting; else the listener broke
    if (self->m_listener) {
        result<void> closed = co_await self->m_listener->close();
        (void)closed; // closing cannot fail in a way that matters here
    }

    auto waiting = timeout(join_connections(self), self->m_options.drain_timeout);
    result<void> drained = co_await std::move(waiting);
    self->m_drain_timed_out = !drained;
    self->m_background.request_stop();
    co_await self->m_background.join();
    if (self->m_options.on_drained) {
        task<void> finishing = self->m_options.on_drained();
        co_await std::move(finishing);
    }
    signal_scope.request_stop();
    co_await signal_scope.join();
    drain_on_token.reset();
    self->m_running = false;
    self->m_ran = true;
    co_return self->stats();
}

} // namespace corio::net
