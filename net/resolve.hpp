// SPDX-License-Identifier: MIT
// resolve(host, service): getaddrinfo on the offload pool, so a slow DNS answer never blocks the
// loop. The awaiting coroutine resumes on the loop thread with the addresses.
#pragma once

#include <corio/net/address.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/task.hpp>

#include <sys/socket.h>

#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace corio::net {

/// getaddrinfo's EAI_* failures (EAI_SYSTEM becomes the errno instead). message() is
/// gai_strerror's text.
enum class resolve_error {
    no_name = 1,       ///< EAI_NONAME: unknown host or service
    again,             ///< EAI_AGAIN: temporary failure (try later)
    fail,              ///< EAI_FAIL: non-recoverable failure of the resolver
    family,            ///< EAI_FAMILY: address family not supported
    service,           ///< EAI_SERVICE: service not available for this socket type
    no_data,           ///< EAI_NODATA: the host exists but has no address
    memory,            ///< EAI_MEMORY
    other,             ///< any other EAI_* value
};

/// The category of resolve_error.
[[nodiscard]] const std::error_category& resolve_category() noexcept;

/// Makes resolve_error usable as a std::error_code.
[[nodiscard]] inline std::error_code make_error_code(resolve_error e) noexcept {
    return {static_cast<int>(e), resolve_category()};
}

/// What to ask getaddrinfo for.
struct resolve_options {
    int family = AF_UNSPEC;      ///< AF_INET, AF_INET6 or both
    int socket_type = SOCK_STREAM; ///< SOCK_STREAM (TCP) or SOCK_DGRAM (UDP)
    bool passive = false;        ///< AI_PASSIVE: addresses to bind (a null host means "any")
};

/// Looks `host` up (a name or a numeric address) for `service` (a port number or a name from
/// /etc/services) on the io_context's offload pool. Resumes on the loop with the addresses in
/// getaddrinfo's order (duplicates removed), or a resolve_error. The job cannot be cancelled
/// once a worker runs it; cancellation takes effect when it returns.
[[nodiscard]] task<result<std::vector<socket_address>>> resolve(std::string host,
                                                              std::string service,
                                                              resolve_options options = {});

} // namespace corio::net

template <>
struct std::is_error_code_enum<corio::net::resolve_error> : std::true_type {};
