// SPDX-License-Identifier: MIT
// socket_address: an IPv4, IPv6 or Unix socket address that parses from and prints to text
// (`127.0.0.1:8080`, `[::1]:80`, `/run/app.sock`, `@abstract`), with errors that say what is wrong.
#pragma once

#include <corio/runtime/result.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace corio::net {

/// Why a text is not an address. Every value compares equal to std::errc::invalid_argument;
/// message() names the problem.
enum class address_error {
    empty = 1,         ///< the text is empty
    missing_port,      ///< `host:port` without the `:port` (or with an empty port)
    bad_port,          ///< the port is not a decimal number 0-65535
    bad_ipv4,          ///< the host is not a dotted-quad IPv4 literal (names go to resolve())
    bad_ipv6,          ///< the text in `[...]` is not an IPv6 literal, or `]` is missing
    unbracketed_ipv6,  ///< an IPv6 literal with a port must be written `[addr]:port`
    bad_unix_path,     ///< a Unix socket path that is empty or contains a NUL byte
    unix_path_too_long ///< a Unix socket path longer than sun_path holds (107 bytes)
};

/// The category of address_error.
[[nodiscard]] const std::error_category& address_category() noexcept;

/// Makes address_error usable as a std::error_code.
[[nodiscard]] inline std::error_code make_error_code(address_error e) noexcept {
    return {static_cast<int>(e), address_category()};
}

/// A socket address of family AF_INET, AF_INET6 or AF_UNIX (or AF_UNSPEC when empty). A plain
/// value: copy it freely; it owns its sockaddr storage.
class socket_address {
public:
    /// An empty address (family AF_UNSPEC).
    socket_address() noexcept = default;

    /// Copies `len` bytes of `addr` (what accept/getsockname/recvmsg filled in). A longer `len`
    /// than the storage is clamped.
    socket_address(const sockaddr* addr, socklen_t len) noexcept;

    /// Parses `127.0.0.1:8080`, `[::1]:80`, a Unix path (`/abs/path`, `unix:relative/path`) or an
    /// abstract Unix name (`@name`). Host names are not looked up here (see resolve()); malformed
    /// text gives an address_error (equal to errc::invalid_argument).
    [[nodiscard]] static result<socket_address> parse(std::string_view text);

    /// The IPv4 address `a.b.c.d` (given in that order) and `port`.
    [[nodiscard]] static socket_address ipv4(std::array<std::uint8_t, 4> octets,
                                             std::uint16_t port) noexcept;
    /// 127.0.0.1:`port` (0: let the kernel pick one when binding).
    [[nodiscard]] static socket_address loopback_v4(std::uint16_t port = 0) noexcept;
    /// `[::1]`:`port`.
    [[nodiscard]] static socket_address loopback_v6(std::uint16_t port = 0) noexcept;
    /// 0.0.0.0:`port`: every IPv4 interface.
    [[nodiscard]] static socket_address any_v4(std::uint16_t port = 0) noexcept;
    /// `[::]`:`port`: every IPv6 interface (and IPv4 too unless IPV6_V6ONLY).
    [[nodiscard]] static socket_address any_v6(std::uint16_t port = 0) noexcept;
    /// A Unix socket path; a leading '@' names an abstract socket (no file). Fails with
    /// unix_path_too_long / bad_unix_path.
    [[nodiscard]] static result<socket_address> unix_path(std::string_view path);

    /// AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
    [[nodiscard]] int family() const noexcept { return m_storage.ss_family; }
    /// Family tests.
    [[nodiscard]] bool is_ipv4() const noexcept { return family() == AF_INET; }
    /// True for an IPv6 address.
    [[nodiscard]] bool is_ipv6() const noexcept { return family() == AF_INET6; }
    /// True for a Unix socket address.
    [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }

    /// The port of an IP address in host byte order; 0 for other families.
    [[nodiscard]] std::uint16_t port() const noexcept;
    /// Changes the port of an IP address (no effect on other families).
    void set_port(std::uint16_t port) noexcept;

    /// The path of a Unix address (`@name` for an abstract one, empty when unnamed).
    [[nodiscard]] std::string path() const;

    /// The text parse() reads back: `1.2.3.4:80`, `[::1]:80`, `/path`, `unix:rel`, `@name`;
    /// an unnamed Unix address prints as `unix:` and an empty one as the empty string.
    [[nodiscard]] std::string to_string() const;

    /// For the socket calls.
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&m_storage);
    }
    /// The storage, for calls that fill the address in (accept, recvfrom); then resize().
    [[nodiscard]] sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&m_storage); }
    /// The length of the address in data(), for the socket calls.
    [[nodiscard]] socklen_t size() const noexcept { return m_size; }
    /// The storage's capacity, for calls that fill the address in.
    [[nodiscard]] static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
    /// Sets the length after a call filled data() in (clamped to capacity()).
    void resize(socklen_t len) noexcept { m_size = len < capacity() ? len : capacity(); }

    /// Same family, same bytes.
    friend bool operator==(const socket_address& a, const socket_address& b) noexcept;

private:
    sockaddr_storage m_storage{}; // the address, family first
    socklen_t m_size = 0;         // bytes of m_storage in use
};

} // namespace corio::net

template <>
struct std::is_error_code_enum<corio::net::address_error> : std::true_type {};
