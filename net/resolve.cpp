// SPDX-License-Identifier: MIT
// resolve(): getaddrinfo on the offload pool and its error category.
#include <corio/net/resolve.hpp>

#include <corio/runtime/offload.hpp>

#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace corio::net {

namespace {

struct eai_mapping {
    int eai;
    resolve_error error;
};

constexpr eai_mapping k_eai_map[] = {
    {EAI_NONAME, resolve_error::no_name}, {EAI_AGAIN, resolve_error::again},
    {EAI_FAIL, resolve_error::fail},      {EAI_FAMILY, resolve_error::family},
    {EAI_SERVICE, resolve_error::service}, {EAI_NODATA, resolve_error::no_data},
    {EAI_MEMORY, resolve_error::memory},
};

class resolve_category_impl final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "corio.resolve"; }
    [[nodiscard]] std::string message(int value) const override {
        for (const eai_mapping& m : k_eai_map)
            if (static_cast<int>(m.error) == value)
                return ::gai_strerror(m.eai);
        return "name resolution failed";
    }
};

std::error_code from_eai(int eai, int saved_errno) noexcept {
    if (eai == EAI_SYSTEM)
        return errno_code(saved_errno != 0 ? saved_errno : EIO);
    for (const eai_mapping& m : k_eai_map)
        if (m.eai == eai)
            return make_error_code(m.error);
    return make_error_code(resolve_error::other);
}

/// The blocking part, run by an offload worker. A named type, not a capturing lambda (see
/// offload()'s note on g++ 12).
struct getaddrinfo_job {
    std::string host;        // name or numeric address; empty means none (passive: any)
    std::string service;     // port number or service name
    resolve_options options; // hints

    result<std::vector<socket_address>> operator()() const {
        addrinfo hints{};
        hints.ai_family = options.family;
        hints.ai_socktype = options.socket_type;
        hints.ai_flags = options.passive ? AI_PASSIVE : 0;
        addrinfo* list = nullptr;
        errno = 0;
        int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                               service.empty() ? nullptr : service.c_str(), &hints, &list);
        if (rc != 0)
            return from_eai(rc, errno);
        std::vector<socket_address> out;
        for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
            socket_address addr(ai->ai_addr, ai->ai_addrlen);
            if (std::find(out.begin(), out.end(), addr) == out.end())
                out.push_back(addr);
        }
        ::freeaddrinfo(list);
        return out;
    }
};

} // namespace

const std::error_category& resolve_category() noexcept {
    static const resolve_category_impl category;
    return category;
}

task<result<std::vector<socket_address>>> resolve(std::string host, std::string service,
                                                  resolve_options options) {
    getaddrinfo_job job{std::move(host), std::move(service), options};
    auto lookup = offload(std::move(job));
    result<std::vector<socket_address>> addresses = co_await lookup;
    co_return addresses;
}

} // namespace corio::net
