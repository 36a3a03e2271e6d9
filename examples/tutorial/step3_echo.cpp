// SPDX-License-Identifier: MIT
// Tutorial step 3 (docs/tutorial.md): a TCP echo server. One coroutine per client, all of them
// owned by a task_scope; Ctrl-C cancels the whole tree through when_any and exits 0.
// Try: build/debug/examples/tutorial/step3_echo --port 0   (prints `listening on PORT`), then
//      nc 127.0.0.1 PORT   from two terminals at once.
#include <corio/corio.hpp>

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace net = corio::net;

// One client, start to end. It reads like blocking code, yet it holds no thread while it waits:
// `conn` and `buffer` live in the coroutine frame.
corio::task<void> echo(net::tcp_stream conn) {
    char buffer[1024];
    for (;;) {
        corio::result<std::size_t> n = co_await conn.recv_some(buffer);
        if (!n || *n == 0)
            break; // an error, cancellation, or the client closed (0 bytes: EOF)
        std::string_view got(buffer, *n);
        corio::result<std::size_t> sent = co_await conn.send_all(got);
        if (!sent)
            break;
    }
    corio::result<void> closed = co_await conn.close(); // cancels what is left, then closes
    (void)closed;
}

corio::task<void> serve(net::tcp_listener* listener) {
    corio::task_scope clients; // owns one echo() per client
    net::tcp_accept_stream incoming = listener->accept_multishot();
    for (;;) {
        corio::result<net::tcp_stream> conn = co_await incoming.next();
        if (!conn)
            break; // cancelled (Ctrl-C), or the listener failed
        // The scope owns the new task, which starts on the next loop turn: back to next() at once.
        clients.spawn(echo(std::move(*conn)));
    }
    co_await clients.join(); // we were cancelled, so join() cancels the clients and waits
}

corio::task<void> until_signal(corio::signal_set* signals) {
    corio::result<int> signo = co_await signals->wait();
    if (signo)
        std::printf("signal %d: stopping\n", *signo);
}

corio::task<int> run(std::uint16_t port, corio::signal_set* signals) {
    auto listener = net::tcp_listener::bind(net::socket_address::loopback_v4(port));
    if (!listener) {
        std::fprintf(stderr, "cannot listen: %s\n", listener.error().message().c_str());
        co_return 1;
    }
    std::printf("listening on %u\n", listener->local_address().value().port());
    std::fflush(stdout);
    // Whichever ends first, the other is cancelled and waited for: a signal stops the server.
    auto race = corio::when_any(serve(&*listener), until_signal(signals));
    co_await race;
    co_return 0;
}

int main(int argc, char** argv) {
    // `--port N` (0: the kernel picks a free port).
    bool has_port = argc == 3 && std::string_view(argv[1]) == "--port";
    auto port = static_cast<std::uint16_t>(has_port ? std::atoi(argv[2]) : 7000);
    // Before the loop and before any thread: SIGINT/SIGTERM become events read through the ring.
    corio::signal_set signals{SIGINT, SIGTERM};
    return corio::sync_wait(run(port, &signals));
}
