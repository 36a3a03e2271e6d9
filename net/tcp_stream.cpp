// SPDX-License-Identifier: MIT
// tcp_stream options.
#include <corio/net/tcp_stream.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

namespace corio::net {

namespace {

result<void> set_int(int fd, int level, int name, int value) noexcept {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
        return errno_code(errno);
    return {};
}

} // namespace

result<void> tcp_stream::configure(int fd, const tcp_options& o) noexcept {
    struct setting {
        bool wanted;
        int level, name, value;
    };
    const setting settings[] = {
        {o.no_delay, IPPROTO_TCP, TCP_NODELAY, 1},
        {o.keepalive, SOL_SOCKET, SO_KEEPALIVE, 1},
        {o.keepalive_idle_s > 0, IPPROTO_TCP, TCP_KEEPIDLE, o.keepalive_idle_s},
        {o.keepalive_interval_s > 0, IPPROTO_TCP, TCP_KEEPINTVL, o.keepalive_interval_s},
        {o.keepalive_count > 0, IPPROTO_TCP, TCP_KEEPCNT, o.keepalive_count},
        {o.send_buffer_size > 0, SOL_SOCKET, SO_SNDBUF, o.send_buffer_size},
        {o.recv_buffer_size > 0, SOL_SOCKET, SO_RCVBUF, o.recv_buffer_size},
    };
    for (const setting& s : settings) {
        if (!s.wanted)
            continue;
        result<void> r = set_int(fd, s.level, s.name, s.value);
        if (!r)
            return r;
    }
    return {};
}

result<void> tcp_stream::set_no_delay(bool on) noexcept {
    return set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

result<bool> tcp_stream::no_delay() const noexcept {
    result<int> v = option(IPPROTO_TCP, TCP_NODELAY);
    if (!v)
        return v.error();
    return *v != 0;
}

result<void> tcp_stream::set_keepalive(bool on, int idle_s, int interval_s, int count) noexcept {
    tcp_options o;
    o.no_delay = false;
    o.keepalive = false;
    o.keepalive_idle_s = idle_s;
    o.keepalive_interval_s = interval_s;
    o.keepalive_count = count;
    result<void> r = set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
    if (!r)
        return r;
    return configure(native_handle(), o);
}

result<bool> tcp_stream::keepalive() const noexcept {
    result<int> v = option(SOL_SOCKET, SO_KEEPALIVE);
    if (!v)
        return v.error();
    return *v != 0;
}

} // namespace corio::net
