// SPDX-License-Identifier: MIT
// A connected loopback TCP pair made with plain syscalls, for the raw-liburing benchmarks.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace corio::bench {

/// A connected loopback TCP pair {connecting end, accepted end}, or {-1, -1}. Blocking sockets.
inline std::pair<int, int> loopback_tcp_pair() {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(listener);
        return {-1, -1};
    }
    int connecting = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(connecting, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(connecting);
        ::close(listener);
        return {-1, -1};
    }
    int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(listener);
    return {connecting, accepted};
}

} // namespace corio::bench
