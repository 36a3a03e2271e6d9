// SPDX-License-Identifier: MIT
// The small-file content cache of corio-http: whole bodies of small files kept in memory, keyed
// by decoded path, each trusted for a revalidation window (like nginx's open_file_cache_valid),
// least recently used evicted first, total bytes bounded. A hit costs no file operation at all.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace corio_http {

/// What identifies a version of a file: when it differs, the cached body is stale.
struct file_identity {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_sec = 0;
    std::uint32_t mtime_nsec = 0;
    friend bool operator==(const file_identity&, const file_identity&) = default;
};

/// One cached file. The body is shared: a response still being sent keeps it alive after an
/// eviction.
struct cached_file {
    std::shared_ptr<const std::string> body; ///< the whole content
    file_identity identity;                  ///< what it was read from
    std::string last_modified;               ///< the formatted Last-Modified value
    std::string_view content_type;           ///< by the served file's extension (static text)
    std::chrono::steady_clock::time_point validated; ///< when it was last checked against the file
};

/// The cache. Not thread-safe (one per loop).
class file_cache {
public:
    /// `max_bytes` bounds the bodies plus keys held (0 disables the cache); files larger than
    /// `max_file` are never cached; an entry is served without a check for `validity`.
    file_cache(std::size_t max_bytes, std::size_t max_file, std::chrono::milliseconds validity);

    /// True when a file of `size` bytes may be cached.
    [[nodiscard]] bool admits(std::uint64_t size) const noexcept {
        return m_max_bytes > 0 && size <= m_max_file;
    }
    /// The entry for `key`, or null; marks it most recently used.
    [[nodiscard]] cached_file* find(const std::string& key);
    /// True when `entry` may be served at `now` without a check.
    [[nodiscard]] bool is_fresh(const cached_file& entry,
                                std::chrono::steady_clock::time_point now) const noexcept {
        return now - entry.validated < m_validity;
    }
    /// Stores (or replaces) `key`, evicting the least recently used entries to stay in bounds.
    void put(const std::string& key, cached_file entry);
    /// Drops `key` if present.
    void erase(const std::string& key);

    [[nodiscard]] std::size_t entries() const noexcept { return m_map.size(); }
    [[nodiscard]] std::size_t bytes() const noexcept { return m_bytes; }

private:
    struct slot {
        cached_file file;
        std::list<std::string>::iterator lru; // its place in m_lru
    };
    static std::size_t cost(const std::string& key, const cached_file& f) noexcept;

    std::size_t m_max_bytes;                        // bound on cost() summed over entries
    std::size_t m_max_file;                         // largest body admitted
    std::chrono::steady_clock::duration m_validity; // how long an entry is trusted unchecked
    std::unordered_map<std::string, slot> m_map;    // key -> entry
    std::list<std::string> m_lru;                   // keys, most recently used first
    std::size_t m_bytes = 0;                        // cost() summed over entries
};

} // namespace corio_http
