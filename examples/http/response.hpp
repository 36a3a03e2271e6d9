// SPDX-License-Identifier: MIT
// Response heads and the small bodies of error responses, appended to a connection's output
// buffer (several pipelined responses share one buffer and one send).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace corio_http {

/// Everything a response head says.
struct response_head {
    int status = 200;
    std::string_view content_type;    ///< "" for none
    std::uint64_t content_length = 0; ///< the body's length (also sent for HEAD)
    std::string_view last_modified;   ///< "" for none
    bool accept_ranges = false;       ///< send "Accept-Ranges: bytes"
    bool keep_alive = true;           ///< "Connection: keep-alive", else "Connection: close"
    bool allow_get_head = false;      ///< send "Allow: GET, HEAD" (405)
    std::string_view location;        ///< "" for none (301)
    enum class range_kind : unsigned char { none, partial, unsatisfiable };
    range_kind range = range_kind::none; ///< which Content-Range to send
    std::uint64_t range_first = 0;       ///< Content-Range: bytes first-last/total
    std::uint64_t range_last = 0;
    std::uint64_t range_total = 0; ///< also for "bytes */total"
};

/// Appends the status line and header fields of `head`, then the blank line, to `out`. `date`
/// is the current Date value.
void append_head(std::string& out, const response_head& head, std::string_view date);

/// The small HTML body of an error response with `status` ("404 Not Found\n" in a page).
[[nodiscard]] std::string error_body(int status);

} // namespace corio_http
