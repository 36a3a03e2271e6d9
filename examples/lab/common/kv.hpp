// SPDX-License-Identifier: MIT
// The synchronisation job's small key-value service (examples/lab/sync, docs/synchronisation.md),
// shared by its servers so that only where the map lives and how it is reached differ: the line
// protocol, the map, the key's owner, and a connection's input split into request lines.
#pragma once

#include "lab.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lab {

// ----- the protocol -----
// `GET <key>\n` -> `VALUE <value>\n` or `NONE\n`;  `SET <key> <value>\n` -> `OK\n`;
// anything else -> `ERR bad request\n`. Keys and values are words (no spaces). A request line
// longer than k_max_request_line gets `ERR too long\n` (k_too_long) and a close.

/// What a request line asks for.
enum class kv_op : std::uint8_t { get, set, bad };

/// A parsed request line; `key` and `value` point into the line.
struct kv_request {
    kv_op op = kv_op::bad;
    std::string_view key;
    std::string_view value; // SET only
};

/// Parses one request line (without its '\n').
kv_request parse_kv(std::string_view line);

/// What the map answered: GET found the key (and its value), SET stored it.
struct kv_result {
    bool found = false;
    std::string value; // GET: a copy of the value (the load's values fit in std::string's SSO)
};

/// Appends the reply line of `req`, answered with `res`, to `out`.
void append_kv_reply(std::string& out, const kv_request& req, const kv_result& res);

/// FNV-1a of the key: the same on every shard and in every style.
std::uint64_t key_hash(std::string_view key);

/// The shard that owns `key` among `shards` (its part of the keyspace).
inline unsigned key_owner(std::string_view key, unsigned shards) {
    return static_cast<unsigned>(key_hash(key) % shards);
}

/// A hash map of strings, looked up by string_view (no std::string built per lookup). Not
/// thread-safe: a server decides who may touch it (one lock, or one shard).
class kv_map {
public:
    /// Runs a GET or a SET (a bad request changes nothing).
    kv_result apply(const kv_request& req);
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }

private:
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return static_cast<std::size_t>(key_hash(s));
        }
    };
    std::unordered_map<std::string, std::string, hash, std::equal_to<>> m_items;
};

/// A connection's input: received bytes, handed out as complete request lines. The lines stay
/// valid (and unmoved) until compact().
class line_input {
public:
    line_input() : m_bytes(k_request_buffer) {}

    /// Where the next read goes (empty when the buffer is full).
    [[nodiscard]] std::span<char> free_space() noexcept {
        return std::span(m_bytes).subspan(m_filled);
    }
    /// `n` bytes were read into free_space().
    void received(std::size_t n) noexcept { m_filled += n; }
    /// The next complete line (without its '\n'), or false when none is left.
    bool next_line(std::string_view& line) noexcept;
    /// After the complete lines: what is left of a line is longer than k_max_request_line.
    [[nodiscard]] bool overflowing() const noexcept {
        return m_filled - m_start > k_max_request_line;
    }
    /// Moves the partial line left over to the front (invalidates the lines handed out).
    void compact() noexcept;

private:
    std::vector<char> m_bytes; // k_request_buffer: a maximal line and pipelined ones
    std::size_t m_start = 0;   // the first byte not yet handed out as a line
    std::size_t m_filled = 0;  // bytes received
};

} // namespace lab
