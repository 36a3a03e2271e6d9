// SPDX-License-Identifier: MIT
// Unix stream sockets: a listener on a path and on an abstract name, connect errors, socketpair.
#include <corio/net/unix_socket.hpp>

#include <corio/runtime/sync_wait.hpp>
#include "tests/net/net_support.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

using namespace corio;
using net::socket_address;
using net::unix_listener;
using net::unix_stream;

namespace {

/// A fresh socket path in a private temp directory (removed with it).
struct temp_socket_path {
    std::string dir;
    std::string path;
    temp_socket_path() {
        char tmpl[] = "/tmp/corio-net-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        path = dir + "/sock";
    }
    ~temp_socket_path() {
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
    }
};

task<std::string> exchange(unix_listener* listener, socket_address addr) {
    result<unix_stream> client = co_await unix_stream::connect(addr);
    REQUIRE(client.has_value());
    result<unix_stream> server = co_await listener->accept();
    REQUIRE(server.has_value());
    result<std::size_t> sent = co_await client->send_all(std::string("over a unix socket"));
    REQUIRE(sent.has_value());
    result<void> shut = co_await client->shutdown();
    REQUIRE(shut.has_value());
    std::string got(64, '\0');
    // Fewer bytes than the buffer holds: recv_exact ends at EOF, counting what arrived.
    transfer_result n = co_await server->recv_exact(std::span<char>(got));
    REQUIRE(n.error() == io_errc::eof);
    got.resize(n.transferred());
    co_return got;
}

task<result<unix_stream>> connect_to(socket_address addr) {
    result<unix_stream> s = co_await unix_stream::connect(addr);
    co_return s;
}

task<std::string> over_pair() {
    auto pair = unix_stream::pair();
    REQUIRE(pair.has_value());
    auto& [a, b] = *pair;
    result<std::size_t> sent = co_await a.send_all(std::string("paired"));
    REQUIRE(sent.has_value());
    std::string got(6, '\0');
    result<std::size_t> n = co_await b.recv_exact(std::span<char>(got));
    REQUIRE(n.value() == 6);
    co_return got;
}

} // namespace

TEST_CASE("a unix listener on a path accepts a stream that carries bytes to EOF") {
    temp_socket_path tmp;
    socket_address addr = socket_address::unix_path(tmp.path).value();
    result<unix_listener> listener = unix_listener::bind(addr);
    REQUIRE(listener.has_value());
    CHECK(listener->local_address().value().path() == tmp.path);
    CHECK(sync_wait(exchange(&*listener, addr)) == "over a unix socket");
}

TEST_CASE("a unix listener on an abstract name leaves no file and works the same") {
    std::string name = "@corio-test-" + std::to_string(::getpid());
    socket_address addr = socket_address::unix_path(name).value();
    result<unix_listener> listener = unix_listener::bind(addr);
    REQUIRE(listener.has_value());
    CHECK(listener->local_address().value().path() == name);
    CHECK(sync_wait(exchange(&*listener, addr)) == "over a unix socket");
}

TEST_CASE("binding a unix path that exists fails with EADDRINUSE") {
    temp_socket_path tmp;
    socket_address addr = socket_address::unix_path(tmp.path).value();
    result<unix_listener> first = unix_listener::bind(addr);
    REQUIRE(first.has_value());
    CHECK(unix_listener::bind(addr) == std::errc::address_in_use);
}

TEST_CASE("connecting to a unix path with no socket gives ENOENT") {
    temp_socket_path tmp;
    socket_address addr = socket_address::unix_path(tmp.path).value();
    CHECK(sync_wait(connect_to(addr)) == std::errc::no_such_file_or_directory);
}

TEST_CASE("unix_stream::pair gives two connected streams") {
    CHECK(sync_wait(over_pair()) == "paired");
}
