// SPDX-License-Identifier: MIT
// resolve() on the offload pool: numeric hosts, localhost, bad services; the loop keeps turning.
#include <corio/net/resolve.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/when_all.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using net::socket_address;

namespace {

task<result<std::vector<socket_address>>> lookup(std::string host, std::string service,
                                                 net::resolve_options options = {}) {
    result<std::vector<socket_address>> r = co_await net::resolve(std::move(host),
                                                                  std::move(service), options);
    co_return r;
}

task<int> count_ticks(int* ticks) {
    for (int i = 0; i < 3; ++i) {
        result<void> r = co_await sleep_for(1ms);
        r.value();
        ++*ticks;
    }
    co_return *ticks;
}

task<void> resolve_while_ticking(int* ticks, std::size_t* found) {
    auto both = when_all(lookup("localhost", "80"), count_ticks(ticks));
    auto [addrs, n] = co_await both;
    *found = addrs.value().size();
}

} // namespace

TEST_CASE("resolving a numeric IPv4 host gives exactly that address and port") {
    net::resolve_options opts;
    opts.family = AF_INET;
    result<std::vector<socket_address>> r = sync_wait(lookup("127.0.0.1", "8080", opts));
    REQUIRE(r.has_value());
    REQUIRE(r->size() == 1);
    CHECK((*r)[0] == socket_address::loopback_v4(8080));
}

TEST_CASE("resolving localhost gives a loopback address with the port") {
    result<std::vector<socket_address>> r = sync_wait(lookup("localhost", "443"));
    REQUIRE(r.has_value());
    REQUIRE_FALSE(r->empty());
    bool loopback = std::any_of(r->begin(), r->end(), [](const socket_address& a) {
        return a == socket_address::loopback_v4(443) || a == socket_address::loopback_v6(443);
    });
    CHECK(loopback);
    for (const socket_address& a : *r)
        CHECK(a.port() == 443);
}

TEST_CASE("an unknown service name is a resolve error with getaddrinfo's message") {
    result<std::vector<socket_address>> r = sync_wait(lookup("127.0.0.1", "no-such-service-x"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().category() == net::resolve_category());
    CHECK_FALSE(r.error().message().empty());
}

TEST_CASE("a passive lookup without a host gives the wildcard address") {
    net::resolve_options opts;
    opts.family = AF_INET;
    opts.passive = true;
    result<std::vector<socket_address>> r = sync_wait(lookup("", "9000", opts));
    REQUIRE(r.has_value());
    REQUIRE(r->size() == 1);
    CHECK((*r)[0] == socket_address::any_v4(9000));
}

TEST_CASE("the loop keeps running timers while a lookup is on the offload pool") {
    int ticks = 0;
    std::size_t found = 0;
    sync_wait(resolve_while_ticking(&ticks, &found));
    CHECK(ticks == 3);
    CHECK(found >= 1);
}
