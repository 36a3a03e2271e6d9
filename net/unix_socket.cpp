// SPDX-License-Identifier: MIT
// unix_stream::pair.
#include <corio/net/unix_socket.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace corio::net {

result<std::pair<unix_stream, unix_stream>> unix_stream::pair() noexcept {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return errno_code(errno);
    return std::pair<unix_stream, unix_stream>(unix_stream(fds[0]), unix_stream(fds[1]));
}

} // namespace corio::net
