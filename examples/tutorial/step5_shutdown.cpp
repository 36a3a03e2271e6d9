// SPDX-License-Identifier: MIT
// Tutorial step 5 (docs/tutorial.md): the chat room of step 4 with a graceful shutdown. The first
// SIGINT/SIGTERM stops accepting, tells every client, and gives them --drain-ms to leave; what is
// still connected then is cancelled, and the server exits 0. A second signal exits at once.
// Try: build/debug/examples/tutorial/step5_shutdown --port 0   (prints `listening on PORT`),
//      nc 127.0.0.1 PORT   from two terminals, then Ctrl-C the server (twice to hurry it).
#include <corio/corio.hpp>

#include <signal.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace net = corio::net;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

// A message is built once and shared by every outbox it is queued in.
using message = std::shared_ptr<const std::string>;

constexpr std::size_t k_outbox = 64;     // messages queued per client before it is dropped
constexpr std::size_t k_max_line = 1024; // a longer line ends the connection
constexpr std::size_t k_max_name = 32;   // longer names are cut

struct options {
    std::uint16_t port = 7000; // 0: the kernel picks a free port
    milliseconds idle = 5min;  // a client silent this long is disconnected
    milliseconds drain = 5s;   // after the first signal: time the clients get to leave
};

struct client {
    std::string name;                         // empty until the client's first line
    corio::channel<message> outbox{k_outbox}; // what the writer has still to send
    corio::event kicked;                      // set when the room drops the client
};

// No lock anywhere: every task runs on the loop's one thread, and between two co_awaits no
// other task runs. broadcast() never awaits, so the list cannot change under its loop.
struct room {
    std::vector<client*> clients; // a frame never moves: a pointer to a local in one is stable

    // Queues `text` for everyone but `from`, without waiting: a client whose outbox is full
    // is dropped, so a slow reader can neither hold the others up nor make the server grow.
    void broadcast(const client* from, std::string text) {
        message m = std::make_shared<const std::string>(std::move(text));
        for (client* c : clients) {
            if (c == from)
                continue;
            corio::result<void> queued = c->outbox.try_send(message(m)); // copies a pointer
            if (queued == std::errc::resource_unavailable_try_again)
                c->kicked.set();
        }
    }
};

// Reads lines and hands them to the room. The first line is the client's name.
corio::task<void> read_loop(net::tcp_stream* conn, client* me, room* chat, milliseconds idle) {
    std::string pending; // received bytes not yet ended by '\n'
    char buffer[512];
    for (;;) {
        auto recv = corio::with_timeout(conn->recv_some(buffer), idle);
        corio::result<std::size_t> n = co_await recv;
        if (!n || *n == 0)
            co_return; // silent for `idle` (errc::timed_out), an error, or EOF
        pending.append(buffer, *n);
        std::string said; // every line this read completed: one message, however many lines
        std::size_t eol;
        while ((eol = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, eol);
            pending.erase(0, eol + 1);
            if (me->name.empty()) {
                me->name = line.empty() ? "anonymous" : line.substr(0, k_max_name);
                chat->broadcast(me, "* " + me->name + " joined\n");
            } else {
                said += me->name + ": " + line + "\n";
            }
        }
        if (!said.empty())
            chat->broadcast(me, std::move(said));
        if (pending.size() > k_max_line)
            co_return;
    }
}

// The only task that writes to this socket: messages go out whole and in order, and while it
// waits for a slow client nobody else waits.
corio::task<void> write_loop(net::tcp_stream* conn, client* me) {
    for (;;) {
        corio::result<message> next = co_await me->outbox.recv();
        if (!next)
            co_return; // the outbox was closed, or we were cancelled
        // Whatever else is queued goes out in the same send: the writer keeps up with any
        // number of messages per loop turn, with one send per turn.
        std::string out = **next;
        for (;;) {
            corio::result<message> more = me->outbox.try_recv();
            if (!more)
                break;
            out += **more;
        }
        // `out` lives in this frame: the kernel reads it until send_all resumes us.
        corio::result<std::size_t> sent = co_await conn->send_all(out);
        if (!sent)
            co_return;
    }
}

corio::task<void> until_kicked(client* me) {
    corio::result<void> set = co_await me->kicked.wait();
    (void)set; // set, or cancelled: either way this client's session is over
}

// One client, from its connection to its close.
corio::task<void> session(net::tcp_stream conn, room* chat, milliseconds idle) {
    client me;
    chat->clients.push_back(&me);
    corio::result<void> asked = me.outbox.try_send(std::make_shared<const std::string>("name?\n"));
    (void)asked; // a new outbox has room
    // The first of the three to end ends the session; when_any cancels the other two.
    auto serving = corio::when_any(read_loop(&conn, &me, chat, idle), write_loop(&conn, &me),
                                   until_kicked(&me));
    co_await serving;
    std::erase(chat->clients, &me);
    if (!me.name.empty())
        chat->broadcast(&me, "* " + me.name + (me.kicked.is_set() ? " was dropped\n" : " left\n"));
    corio::result<void> closed = co_await conn.close();
    (void)closed;
}

// The first signal closes the listener, which ends the accept loop in run(). While run()
// drains, a second signal means "now": exit without waiting for anything.
corio::task<void> watch_signals(corio::signal_set* signals, net::tcp_listener* listener) {
    corio::result<int> first = co_await signals->wait();
    if (!first)
        co_return; // cancelled: the server is done
    std::printf("signal %d: shutting down\n", *first);
    std::fflush(stdout);
    corio::result<void> closed = co_await listener->close();
    (void)closed;
    corio::result<int> second = co_await signals->wait();
    if (!second)
        co_return; // cancelled: the drain ended first
    std::printf("signal %d again: exiting now\n", *second);
    std::fflush(stdout);
    std::_Exit(128 + *second); // the shell's code for "ended by this signal"
}

// join() is an awaitable, not a task: wrap it to give it to timeout().
corio::task<void> join(corio::task_scope* scope) {
    co_await scope->join();
}

corio::task<int> run(options opt, corio::signal_set* signals) {
    // Accepted sockets inherit these options. A fixed kernel send buffer bounds what the kernel
    // holds for a client that does not read, as the outbox bounds what we hold.
    net::tcp_options per_client{.send_buffer_size = 64 * 1024};
    auto listener =
        net::tcp_listener::bind(net::socket_address::loopback_v4(opt.port), {}, per_client);
    if (!listener) {
        std::fprintf(stderr, "cannot listen: %s\n", listener.error().message().c_str());
        co_return 1;
    }
    std::printf("listening on %u\n", listener->local_address().value().port());
    std::fflush(stdout);
    room chat;
    corio::task_scope control;  // the signal watcher
    corio::task_scope sessions; // one session() per client
    control.spawn(watch_signals(signals, &*listener));
    {
        net::tcp_accept_stream incoming = listener->accept_multishot();
        for (;;) {
            corio::result<net::tcp_stream> conn = co_await incoming.next();
            if (!conn)
                break; // the watcher closed the listener
            sessions.spawn(session(std::move(*conn), &chat, opt.idle));
        }
    }
    // Tell everyone, then give them opt.drain to leave; timeout() cancels whoever is left (their
    // sessions still close their sockets: cancellation unwinds, it does not abandon).
    chat.broadcast(nullptr,
                   "* server shutting down in " + std::to_string(opt.drain.count()) + " ms\n");
    auto drain = corio::timeout(join(&sessions), opt.drain);
    corio::result<void> drained = co_await std::move(drain);
    if (!drained)
        std::printf("drain: cancelled the clients still connected after %lld ms\n",
                    static_cast<long long>(opt.drain.count()));
    control.request_stop(); // the watcher waits for a second signal that will not come
    co_await control.join();
    std::printf("bye\n");
    co_return 0;
}

int main(int argc, char** argv) {
    options opt; // --port N, --idle-timeout-ms MS, --drain-ms MS
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view flag = argv[i];
        if (flag == "--port")
            opt.port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
        else if (flag == "--idle-timeout-ms")
            opt.idle = milliseconds(std::atol(argv[i + 1]));
        else if (flag == "--drain-ms")
            opt.drain = milliseconds(std::atol(argv[i + 1]));
    }
    corio::signal_set signals{SIGINT, SIGTERM};
    return corio::sync_wait(run(opt, &signals));
}
