// SPDX-License-Identifier: MIT
// Addresses parse strictly, print back the way they parse, and name what is wrong with bad text.
#include <corio/net/address.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>

using namespace corio;
using net::address_error;
using net::socket_address;

TEST_CASE("an IPv4 address with a port parses and prints back") {
    result<socket_address> a = socket_address::parse("127.0.0.1:8080");
    REQUIRE(a.has_value());
    CHECK(a->is_ipv4());
    CHECK(a->port() == 8080);
    CHECK(a->size() == sizeof(sockaddr_in));
    CHECK(a->to_string() == "127.0.0.1:8080");
    CHECK(*a == socket_address::loopback_v4(8080));
}

TEST_CASE("an IPv6 address in brackets parses and prints back") {
    result<socket_address> a = socket_address::parse("[::1]:80");
    REQUIRE(a.has_value());
    CHECK(a->is_ipv6());
    CHECK(a->port() == 80);
    CHECK(a->to_string() == "[::1]:80");
    CHECK(*a == socket_address::loopback_v6(80));

    result<socket_address> full = socket_address::parse("[2001:db8::a:b]:65535");
    REQUIRE(full.has_value());
    CHECK(full->to_string() == "[2001:db8::a:b]:65535");
    CHECK(socket_address::parse("[::ffff:1.2.3.4]:1")->to_string() == "[::ffff:1.2.3.4]:1");
}

TEST_CASE("ports 0 and 65535 are the ends of the range") {
    CHECK(socket_address::parse("0.0.0.0:0")->port() == 0);
    CHECK(socket_address::parse("1.2.3.4:65535")->port() == 65535);
    CHECK(socket_address::parse("1.2.3.4:00080")->port() == 80);
}

TEST_CASE("Unix paths, relative paths and abstract names parse and print back") {
    result<socket_address> abs = socket_address::parse("/run/corio.sock");
    REQUIRE(abs.has_value());
    CHECK(abs->is_unix());
    CHECK(abs->path() == "/run/corio.sock");
    CHECK(abs->to_string() == "/run/corio.sock");
    CHECK(abs->port() == 0);

    result<socket_address> rel = socket_address::parse("unix:sock/here");
    REQUIRE(rel.has_value());
    CHECK(rel->path() == "sock/here");
    CHECK(rel->to_string() == "unix:sock/here");

    result<socket_address> abstract = socket_address::parse("@corio-test");
    REQUIRE(abstract.has_value());
    CHECK(abstract->path() == "@corio-test");
    CHECK(abstract->to_string() == "@corio-test");
    // An abstract name is exactly its bytes: no terminating NUL counted.
    CHECK(abstract->size() == offsetof(sockaddr_un, sun_path) + 11);
}

TEST_CASE("a Unix path of 107 bytes fits and one of 108 does not") {
    std::string longest = "/" + std::string(106, 'x');
    CHECK(socket_address::unix_path(longest).has_value());
    result<socket_address> too_long = socket_address::unix_path(longest + "x");
    CHECK(too_long.error() == address_error::unix_path_too_long);
    CHECK(too_long == std::errc::invalid_argument);
}

TEST_CASE("set_port changes IP addresses and leaves Unix ones alone") {
    socket_address a = socket_address::loopback_v4(1);
    a.set_port(4242);
    CHECK(a.to_string() == "127.0.0.1:4242");
    socket_address u = *socket_address::unix_path("/tmp/x");
    u.set_port(4242);
    CHECK(u.to_string() == "/tmp/x");
}

TEST_CASE("malformed addresses are rejected with the reason") {
    struct bad_case {
        std::string_view text;
        address_error why;
    };
    const bad_case cases[] = {
        {"", address_error::empty},
        {"127.0.0.1", address_error::missing_port},
        {"127.0.0.1:", address_error::missing_port},
        {":80", address_error::bad_ipv4},
        {"localhost:80", address_error::bad_ipv4},
        {"127.0.0.1:65536", address_error::bad_port},
        {"127.0.0.1:99999", address_error::bad_port},
        {"127.0.0.1:123456", address_error::bad_port},
        {"127.0.0.1:-1", address_error::bad_port},
        {"127.0.0.1:+80", address_error::bad_port},
        {"127.0.0.1: 80", address_error::bad_port},
        {"127.0.0.1:80 ", address_error::bad_port},
        {"127.0.0.1:8o", address_error::bad_port},
        {"127.0.0.1:0x50", address_error::bad_port},
        {" 127.0.0.1:80", address_error::bad_ipv4},
        {"256.0.0.1:80", address_error::bad_ipv4},
        {"1.2.3:80", address_error::bad_ipv4},
        {"1.2.3.4.5:80", address_error::bad_ipv4},
        {"1.2.3.04:80", address_error::bad_ipv4},
        {"1..2.3:80", address_error::bad_ipv4},
        {"01.2.3.4:80", address_error::bad_ipv4},
        {"::1:80", address_error::unbracketed_ipv6},
        {"::1", address_error::unbracketed_ipv6},
        {"1.2.3.4:80:90", address_error::unbracketed_ipv6},
        {"[::1]", address_error::missing_port},
        {"[::1]:", address_error::missing_port},
        {"[::1]80", address_error::bad_port},
        {"[::1]:80x", address_error::bad_port},
        {"[::1]:70000", address_error::bad_port},
        {"[::1:80", address_error::bad_ipv6},
        {"[]:80", address_error::bad_ipv6},
        {"[::g]:80", address_error::bad_ipv6},
        {"[1.2.3.4]:80", address_error::bad_ipv6},
        {"[fe80::1%eth0]:80", address_error::bad_ipv6},
        {"[:::1]:80", address_error::bad_ipv6},
        {"[1:2:3:4:5:6:7:8:9]:80", address_error::bad_ipv6},
        {"unix:", address_error::bad_unix_path},
        {"@", address_error::bad_unix_path},
        {std::string_view("/tmp/a\0b", 8), address_error::bad_unix_path},
        {std::string_view("127.0.0.1\0:80", 13), address_error::bad_ipv4},
    };
    for (const bad_case& c : cases) {
        CAPTURE(c.text);
        result<socket_address> r = socket_address::parse(c.text);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == c.why);
        CHECK(r == std::errc::invalid_argument);
        CHECK_FALSE(r.error().message().empty());
    }
}

TEST_CASE("address errors have messages that name the problem") {
    CHECK(make_error_code(address_error::bad_port).message().find("port") != std::string::npos);
    CHECK(make_error_code(address_error::unbracketed_ipv6).message().find("[addr]:port") !=
          std::string::npos);
    CHECK(std::string(net::address_category().name()) == "corio.address");
}

TEST_CASE("an address copied from a sockaddr compares equal to the original") {
    socket_address a = socket_address::loopback_v6(9);
    socket_address b(a.data(), a.size());
    CHECK(a == b);
    CHECK_FALSE(a == socket_address::loopback_v6(10));
    CHECK(socket_address().to_string().empty());
    CHECK(socket_address().family() == AF_UNSPEC);
}
