// SPDX-License-Identifier: MIT
// Tutorial step 4 (docs/tutorial.md): a chat room. Each client has a reader task, a writer task
// and a bounded outbox (a corio::channel) between the room and the writer: a slow client never
// holds up the others, and one that falls too far behind is dropped. Silent clients time out.
// Try: build/debug/examples/tutorial/step4_chat --port 0   (prints `listening on PORT`), then
//      nc 127.0.0.1 PORT   from two terminals: type a name, then messages.
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

corio::task<void> serve(net::tcp_listener* listener, room* chat, milliseconds idle) {
    corio::task_scope sessions; // one session() per client
    net::tcp_accept_stream incoming = listener->accept_multishot();
    for (;;) {
        corio::result<net::tcp_stream> conn = co_await incoming.next();
        if (!conn)
            break;
        sessions.spawn(session(std::move(*conn), chat, idle));
    }
    co_await sessions.join();
}

corio::task<void> until_signal(corio::signal_set* signals) {
    corio::result<int> signo = co_await signals->wait();
    if (signo)
        std::printf("signal %d: stopping\n", *signo);
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
    auto race = corio::when_any(serve(&*listener, &chat, opt.idle), until_signal(signals));
    co_await race;
    co_return 0;
}

int main(int argc, char** argv) {
    options opt; // --port N, --idle-timeout-ms MS
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view flag = argv[i];
        if (flag == "--port")
            opt.port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
        else if (flag == "--idle-timeout-ms")
            opt.idle = milliseconds(std::atol(argv[i + 1]));
    }
    corio::signal_set signals{SIGINT, SIGTERM};
    return corio::sync_wait(run(opt, &signals));
}
