// SPDX-License-Identifier: MIT
// HTTP dates (IMF-fixdate, RFC 9110 §5.6.7): formatting for Date/Last-Modified, parsing for
// If-Modified-Since, and a once-per-second cache of the current Date value.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace corio_http {

/// "Sun, 06 Nov 1994 08:49:37 GMT" for `t` (seconds since the epoch, UTC). Always 29 chars.
[[nodiscard]] std::string format_http_date(std::int64_t t);

/// The seconds since the epoch of an IMF-fixdate; nullopt for anything else (the obsolete
/// RFC 850 and asctime forms included: such an If-Modified-Since is ignored).
[[nodiscard]] std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept;

/// The current time as a Date value, formatted at most once per second (CLOCK_REALTIME_COARSE
/// through the vDSO: no syscall).
class date_cache {
public:
    [[nodiscard]] std::string_view now();

private:
    std::int64_t m_second = -1; // the second m_text shows
    std::string m_text;         // its formatted value
};

} // namespace corio_http
