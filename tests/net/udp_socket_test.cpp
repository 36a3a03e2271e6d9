// SPDX-License-Identifier: MIT
// UDP through the ring: a datagram round trip with the sender's address, and truncation.
#include <corio/net/udp_socket.hpp>

#include <corio/runtime/sync_wait.hpp>
#include "tests/net/net_support.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace corio;
using net::datagram;
using net::socket_address;
using net::udp_socket;

namespace {

task<void> round_trip() {
    result<udp_socket> server = udp_socket::bind(socket_address::loopback_v4(0));
    REQUIRE(server.has_value());
    result<udp_socket> client = udp_socket::bind(socket_address::loopback_v4(0));
    REQUIRE(client.has_value());
    socket_address server_addr = server->local_address().value();
    socket_address client_addr = client->local_address().value();
    CHECK(server_addr.port() != 0);

    result<std::size_t> sent = co_await client->send_to(std::string_view("ping"), server_addr);
    CHECK(sent.value() == 4);
    char buffer[64];
    result<datagram> got = co_await server->recv_from(std::span<char>(buffer));
    REQUIRE(got.has_value());
    CHECK(std::string(buffer, got->size) == "ping");
    CHECK(got->from == client_addr);
    CHECK_FALSE(got->truncated);

    // Answer whoever asked: the address recv_from reported.
    result<std::size_t> answered = co_await server->send_to(std::string_view("pong"), got->from);
    CHECK(answered.value() == 4);
    result<datagram> reply = co_await client->recv_from(std::span<char>(buffer));
    REQUIRE(reply.has_value());
    CHECK(std::string(buffer, reply->size) == "pong");
    CHECK(reply->from == server_addr);
}

task<datagram> truncated() {
    udp_socket server = udp_socket::bind(socket_address::loopback_v4(0)).value();
    udp_socket client = udp_socket::open(AF_INET).value();
    socket_address addr = server.local_address().value();
    result<std::size_t> sent = co_await client.send_to(std::string_view("0123456789"), addr);
    REQUIRE(sent.value() == 10);
    char small[4];
    result<datagram> got = co_await server.recv_from(std::span<char>(small));
    REQUIRE(got.has_value());
    CHECK(std::string(small, got->size) == "0123");
    co_return *got;
}

} // namespace

TEST_CASE("a UDP datagram goes there and back, with the sender's address") {
    sync_wait(round_trip());
}

TEST_CASE("a datagram longer than the buffer is cut and reported as truncated") {
    datagram d = sync_wait(truncated());
    CHECK(d.size == 4);
    CHECK(d.truncated);
}
