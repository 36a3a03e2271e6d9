// SPDX-License-Identifier: MIT
// IMF-fixdate formatting and parsing with civil-date arithmetic (no time zone files, no locale).
#include "examples/http/http_date.hpp"

#include <cstdio>
#include <cstring>

namespace corio_http {

namespace {

constexpr const char* k_days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
constexpr const char* k_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

bool digits(std::string_view s, std::size_t at, std::size_t n, unsigned& out) noexcept {
    unsigned v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + static_cast<unsigned>(s[i] - '0');
    }
    out = v;
    return true;
}

} // namespace

std::string format_http_date(std::int64_t t) {
    std::int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    std::int64_t secs = t - days * 86400;
    std::int64_t y = 0;
    unsigned m = 0;
    unsigned d = 0;
    civil_from_days(days, y, m, d);
    std::int64_t weekday = days % 7;
    if (weekday < 0)
        weekday += 7;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02lld:%02lld:%02lld GMT", k_days[weekday],
                  d, k_months[m - 1], static_cast<long long>(y),
                  static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                  static_cast<long long>(secs % 60));
    return buf;
}

std::optional<std::int64_t> parse_http_date(std::string_view s) noexcept {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' || s.substr(26) != "GMT")
        return std::nullopt;
    bool day_ok = false;
    for (const char* name : k_days)
        day_ok = day_ok || s.substr(0, 3) == name;
    unsigned month = 0;
    for (unsigned i = 0; i < 12; ++i)
        if (s.substr(8, 3) == k_months[i])
            month = i + 1;
    unsigned d = 0, y = 0, hh = 0, mm = 0, ss = 0;
    if (!day_ok || month == 0 || !digits(s, 5, 2, d) || !digits(s, 12, 4, y) ||
        !digits(s, 17, 2, hh) || !digits(s, 20, 2, mm) || !digits(s, 23, 2, ss))
        return std::nullopt;
    if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
        return std::nullopt;
    return days_from_civil(y, month, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

std::string_view date_cache::now() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != m_second) {
        m_second = ts.tv_sec;
        m_text = format_http_date(ts.tv_sec);
    }
    return m_text;
}

} // namespace corio_http
