// SPDX-License-Identifier: MIT
// Parsing and printing of socket addresses, strictly: anything parse() accepts prints back the
// same way, anything else is an address_error naming the problem.
#include <corio/net/address.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace corio::net {

namespace {

class address_category_impl final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "corio.address"; }

    [[nodiscard]] std::string message(int value) const override {
        switch (static_cast<address_error>(value)) {
        case address_error::empty:
            return "address is empty";
        case address_error::missing_port:
            return "address has no port (expected host:port)";
        case address_error::bad_port:
            return "port is not a decimal number from 0 to 65535";
        case address_error::bad_ipv4:
            return "host is not an IPv4 literal such as 127.0.0.1 (resolve() looks names up)";
        case address_error::bad_ipv6:
            return "not an IPv6 literal in brackets, such as [::1]:80";
        case address_error::unbracketed_ipv6:
            return "an IPv6 address with a port must be written [addr]:port";
        case address_error::bad_unix_path:
            return "Unix socket path is empty or contains a NUL byte";
        case address_error::unix_path_too_long:
            return "Unix socket path is longer than 107 bytes";
        }
        return "unknown address error";
    }

    [[nodiscard]] std::error_condition default_error_condition(int) const noexcept override {
        return std::errc::invalid_argument;
    }
};

/// Max bytes of a Unix path, the terminating NUL (pathname sockets) excluded.
constexpr std::size_t k_max_unix_path = sizeof(sockaddr_un::sun_path) - 1;

/// A decimal port: 1-5 digits, no sign, no spaces, at most 65535.
result<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty())
        return make_error_code(address_error::missing_port);
    if (text.size() > 5)
        return make_error_code(address_error::bad_port);
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return make_error_code(address_error::bad_port);
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535)
        return make_error_code(address_error::bad_port);
    return static_cast<std::uint16_t>(value);
}

/// inet_pton wants a NUL-terminated string: copy a bounded piece of text.
bool to_c_string(std::string_view text, char* out, std::size_t out_size) {
    if (text.size() >= out_size || text.find('\0') != std::string_view::npos)
        return false;
    std::memcpy(out, text.data(), text.size());
    out[text.size()] = '\0';
    return true;
}

result<socket_address> parse_ipv6(std::string_view text) {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos)
        return make_error_code(address_error::bad_ipv6);
    char host[INET6_ADDRSTRLEN];
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    if (!to_c_string(text.substr(1, close - 1), host, sizeof host) ||
        ::inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
        return make_error_code(address_error::bad_ipv6);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty())
        return make_error_code(address_error::missing_port);
    if (rest.front() != ':')
        return make_error_code(address_error::bad_port);
    result<std::uint16_t> port = parse_port(rest.substr(1));
    if (!port)
        return port.error();
    sin6.sin6_port = htons(*port);
    return socket_address(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

result<socket_address> parse_ipv4(std::string_view text) {
    std::size_t colon = text.find(':');
    if (colon == std::string_view::npos)
        return make_error_code(address_error::missing_port);
    if (text.find(':', colon + 1) != std::string_view::npos)
        return make_error_code(address_error::unbracketed_ipv6);
    char host[INET_ADDRSTRLEN];
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    if (!to_c_string(text.substr(0, colon), host, sizeof host) ||
        ::inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return make_error_code(address_error::bad_ipv4);
    result<std::uint16_t> port = parse_port(text.substr(colon + 1));
    if (!port)
        return port.error();
    sin.sin_port = htons(*port);
    return socket_address(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
}

} // namespace

const std::error_category& address_category() noexcept {
    static const address_category_impl category;
    return category;
}

socket_address::socket_address(const sockaddr* addr, socklen_t len) noexcept {
    m_size = std::min(len, capacity());
    std::memcpy(&m_storage, addr, m_size);
}

result<socket_address> socket_address::parse(std::string_view text) {
    if (text.empty())
        return make_error_code(address_error::empty);
    if (text.front() == '/' || text.front() == '@')
        return unix_path(text);
    if (text.starts_with("unix:"))
        return unix_path(text.substr(5));
    if (text.front() == '[')
        return parse_ipv6(text);
    return parse_ipv4(text);
}

socket_address socket_address::ipv4(std::array<std::uint8_t, 4> octets,
                                    std::uint16_t port) noexcept {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, octets.data(), 4);
    return {reinterpret_cast<const sockaddr*>(&sin), sizeof sin};
}

socket_address socket_address::loopback_v4(std::uint16_t port) noexcept {
    return ipv4({127, 0, 0, 1}, port);
}

socket_address socket_address::any_v4(std::uint16_t port) noexcept {
    return ipv4({0, 0, 0, 0}, port);
}

socket_address socket_address::loopback_v6(std::uint16_t port) noexcept {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_loopback;
    return {reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6};
}

socket_address socket_address::any_v6(std::uint16_t port) noexcept {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_any;
    return {reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6};
}

result<socket_address> socket_address::unix_path(std::string_view path) {
    if (path.empty() || path.find('\0') != std::string_view::npos)
        return make_error_code(address_error::bad_unix_path);
    bool abstract = path.front() == '@';
    if (abstract && path.size() == 1)
        return make_error_code(address_error::bad_unix_path);
    if (path.size() > k_max_unix_path)
        return make_error_code(address_error::unix_path_too_long);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    if (abstract)
        sun.sun_path[0] = '\0'; // the kernel's marker for the abstract namespace
    // Pathname sockets count their terminating NUL; abstract names are exactly their bytes.
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                      (abstract ? 0 : 1));
    return socket_address(reinterpret_cast<const sockaddr*>(&sun), len);
}

std::uint16_t socket_address::port() const noexcept {
    if (is_ipv4())
        return ntohs(reinterpret_cast<const sockaddr_in*>(&m_storage)->sin_port);
    if (is_ipv6())
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&m_storage)->sin6_port);
    return 0;
}

void socket_address::set_port(std::uint16_t port) noexcept {
    if (is_ipv4())
        reinterpret_cast<sockaddr_in*>(&m_storage)->sin_port = htons(port);
    else if (is_ipv6())
        reinterpret_cast<sockaddr_in6*>(&m_storage)->sin6_port = htons(port);
}

// NOTE: the strings below are built with append(), not `"x" + std::string(...)`: g++ 12 at -O3
// reports a false -Wrestrict inside operator+(const char*, string&&) (GCC PR 105329).
std::string socket_address::path() const {
    if (!is_unix() || m_size <= offsetof(sockaddr_un, sun_path))
        return {};
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&m_storage);
    std::size_t len = m_size - offsetof(sockaddr_un, sun_path);
    std::string out;
    if (sun->sun_path[0] == '\0') { // abstract: exactly len bytes, the first one a NUL
        out.append(1, '@');
        out.append(sun->sun_path + 1, len - 1);
        return out;
    }
    out.append(sun->sun_path, strnlen(sun->sun_path, len));
    return out;
}

std::string socket_address::to_string() const {
    char host[INET6_ADDRSTRLEN];
    std::string out;
    if (is_ipv4()) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&m_storage);
        ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        out.append(host).append(1, ':').append(std::to_string(port()));
    } else if (is_ipv6()) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&m_storage);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        out.append(1, '[').append(host).append("]:").append(std::to_string(port()));
    } else if (is_unix()) {
        std::string p = path();
        if (p.empty() || (p.front() != '/' && p.front() != '@'))
            out.append("unix:");
        out.append(p);
    }
    return out;
}

bool operator==(const socket_address& a, const socket_address& b) noexcept {
    return a.m_size == b.m_size && std::memcmp(&a.m_storage, &b.m_storage, a.m_size) == 0;
}

} // namespace corio::net
