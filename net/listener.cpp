// SPDX-License-Identifier: MIT
// Listener setup: socket, options, bind, listen.
#include <corio/net/listener.hpp>

#include <unistd.h>

#include <cerrno>

namespace corio::net::detail {

result<int> open_listener(const socket_address& addr, const listen_options& options,
                          result<void> (*configure)(int fd, const void* stream_options),
                          const void* stream_options) {
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno_code(errno);
    basic_socket owner(fd); // closes the fd on every error path
    bool ip = addr.is_ipv4() || addr.is_ipv6();
    if (ip && options.reuse_address) {
        result<void> r = owner.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
        if (!r)
            return r.error();
    }
    if (ip && options.reuse_port) {
        result<void> r = owner.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
        if (!r)
            return r.error();
    }
    result<void> configured = configure(fd, stream_options);
    if (!configured)
        return configured.error();
    if (::bind(fd, addr.data(), addr.size()) != 0)
        return errno_code(errno);
    if (::listen(fd, options.backlog) != 0)
        return errno_code(errno);
    return owner.release();
}

} // namespace corio::net::detail
