// SPDX-License-Identifier: MIT
// The synchronisation job's protocol, map and line splitting (see kv.hpp).
#include "kv.hpp"

#include <cstring>

namespace lab {

namespace {

/// The next space-separated word of `rest` (which loses it and the space after it).
std::string_view next_word(std::string_view& rest) {
    std::size_t space = rest.find(' ');
    std::string_view word = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    return word;
}

} // namespace

kv_request parse_kv(std::string_view line) {
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1); // nc and telnet may send CRLF
    std::string_view verb = next_word(line);
    kv_request req;
    req.key = next_word(line);
    if (req.key.empty())
        return {};
    if (verb == "GET" && line.empty()) {
        req.op = kv_op::get;
        return req;
    }
    req.value = next_word(line);
    if (verb == "SET" && !req.value.empty() && line.empty()) {
        req.op = kv_op::set;
        return req;
    }
    return {};
}

void append_kv_reply(std::string& out, const kv_request& req, const kv_result& res) {
    switch (req.op) {
    case kv_op::get:
        if (!res.found) {
            out += "NONE\n";
            return;
        }
        out += "VALUE ";
        out += res.value;
        out += '\n';
        return;
    case kv_op::set:
        out += "OK\n";
        return;
    case kv_op::bad:
        out += "ERR bad request\n";
        return;
    }
}

std::uint64_t key_hash(std::string_view key) {
    std::uint64_t h = 14695981039346656037ull;
    for (char c : key)
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
}

kv_result kv_map::apply(const kv_request& req) {
    kv_result res;
    if (req.op == kv_op::get) {
        auto found = m_items.find(req.key);
        if (found != m_items.end()) {
            res.found = true;
            res.value = found->second;
        }
    } else if (req.op == kv_op::set) {
        auto found = m_items.find(req.key);
        if (found != m_items.end())
            found->second.assign(req.value); // no allocation for a value of the same size
        else
            m_items.emplace(std::string(req.key), std::string(req.value));
        res.found = true;
    }
    return res;
}

bool line_input::next_line(std::string_view& line) noexcept {
    const char* begin = m_bytes.data() + m_start;
    const void* nl = std::memchr(begin, '\n', m_filled - m_start);
    if (!nl)
        return false;
    std::size_t length = static_cast<std::size_t>(static_cast<const char*>(nl) - begin);
    line = std::string_view(begin, length);
    m_start += length + 1;
    return true;
}

void line_input::compact() noexcept {
    if (m_start == 0)
        return;
    std::memmove(m_bytes.data(), m_bytes.data() + m_start, m_filled - m_start);
    m_filled -= m_start;
    m_start = 0;
}

} // namespace lab
