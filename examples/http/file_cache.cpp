// SPDX-License-Identifier: MIT
// The LRU content cache behind corio-http's fast path (see file_cache.hpp).
#include "examples/http/file_cache.hpp"

namespace corio_http {

file_cache::file_cache(std::size_t max_bytes, std::size_t max_file,
                       std::chrono::milliseconds validity)
    : m_max_bytes(max_bytes), m_max_file(max_file), m_validity(validity) {}

std::size_t file_cache::cost(const std::string& key, const cached_file& f) noexcept {
    constexpr std::size_t k_overhead = 256; // map node, list node, strings' own headers
    return key.size() + (f.body ? f.body->size() : 0) + f.last_modified.size() + k_overhead;
}

cached_file* file_cache::find(const std::string& key) {
    auto it = m_map.find(key);
    if (it == m_map.end())
        return nullptr;
    m_lru.splice(m_lru.begin(), m_lru, it->second.lru);
    return &it->second.file;
}

void file_cache::erase(const std::string& key) {
    auto it = m_map.find(key);
    if (it == m_map.end())
        return;
    m_bytes -= cost(key, it->second.file);
    m_lru.erase(it->second.lru);
    m_map.erase(it);
}

void file_cache::put(const std::string& key, cached_file entry) {
    erase(key);
    std::size_t c = cost(key, entry);
    if (m_max_bytes == 0 || c > m_max_bytes)
        return;
    while (m_bytes + c > m_max_bytes && !m_lru.empty()) {
        std::string victim = m_lru.back(); // a copy: erase() frees the list's own string
        erase(victim);
    }
    m_lru.push_front(key);
    m_map.emplace(key, slot{std::move(entry), m_lru.begin()});
    m_bytes += c;
}

} // namespace corio_http
