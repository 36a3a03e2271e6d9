// SPDX-License-Identifier: MIT
// udp_socket creation.
#include <corio/net/udp_socket.hpp>

#include <cerrno>

namespace corio::net {

result<udp_socket> udp_socket::open(int family) noexcept {
    int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno_code(errno);
    return udp_socket(fd);
}

result<udp_socket> udp_socket::bind(const socket_address& addr) noexcept {
    result<udp_socket> s = open(addr.family());
    if (!s)
        return s;
    if (::bind(s->native_handle(), addr.data(), addr.size()) != 0)
        return errno_code(errno);
    return s;
}

} // namespace corio::net
