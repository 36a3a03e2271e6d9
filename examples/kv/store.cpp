// SPDX-License-Identifier: MIT
// The keyspace (see store.hpp).
#include "store.hpp"

#include <time.h>

namespace kv {

std::int64_t unix_time_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

store::store() : store(clock_type(&unix_time_ms)) {}

store::store(clock_type clock) : m_clock(std::move(clock)) {}

bool store::is_expired(const node& n) const {
    return !m_loading && n.second.expire_at != 0 && n.second.expire_at <= now();
}

store::node* store::find(std::string_view key) {
    auto it = m_map.find(key);
    if (it == m_map.end())
        return nullptr;
    if (it->second.expire_at != 0 && is_expired(*it)) {
        expire_now(*it);
        return nullptr;
    }
    return &*it;
}

store::node& store::upsert(std::string_view key, bool& created) {
    if (node* n = find(key)) {
        created = false;
        return *n;
    }
    created = true;
    auto [it, inserted] = m_map.emplace(std::string(key), entry{});
    (void)inserted;
    return *it;
}

bool store::erase(std::string_view key) {
    node* n = find(key);
    if (!n)
        return false;
    unlink_volatile(*n);
    m_map.erase(m_map.find(key));
    return true;
}

void store::set_expire(node& n, std::int64_t at) {
    entry& e = n.second;
    if (at != 0 && e.volatile_index == entry::npos) {
        e.volatile_index = m_volatile.size();
        m_volatile.push_back(&n);
    } else if (at == 0) {
        unlink_volatile(n);
    }
    e.expire_at = at;
}

void store::unlink_volatile(node& n) noexcept {
    std::size_t i = n.second.volatile_index;
    if (i == entry::npos)
        return;
    node* last = m_volatile.back();
    m_volatile[i] = last;
    last->second.volatile_index = i;
    m_volatile.pop_back();
    n.second.volatile_index = entry::npos;
    n.second.expire_at = 0;
}

void store::clear() {
    m_map.clear();
    m_volatile.clear();
}

void store::expire_now(node& n) {
    ++m_expired_keys;
    if (m_on_expired)
        m_on_expired(m_on_expired_ctx, n.first);
    unlink_volatile(n);
    m_map.erase(m_map.find(std::string_view(n.first)));
}

std::uint64_t store::next_random() noexcept {
    std::uint64_t x = m_random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return m_random = x;
}

expire_cycle_stats store::active_expire_cycle(std::chrono::microseconds budget) {
    expire_cycle_stats stats;
    if (m_loading)
        return stats;
    auto start = std::chrono::steady_clock::now();
    for (;;) {
        std::size_t sample = m_volatile.size() < 20 ? m_volatile.size() : 20;
        if (sample == 0)
            return stats;
        std::int64_t t = now();
        std::size_t expired = 0;
        for (std::size_t i = 0; i < sample && !m_volatile.empty(); ++i) {
            node* n = m_volatile[next_random() % m_volatile.size()];
            ++stats.sampled;
            if (n->second.expire_at <= t) {
                expire_now(*n);
                ++expired;
            }
        }
        stats.expired += expired;
        if (expired * 4 <= sample)
            return stats; // at most a quarter expired: not worth another round now
        if (std::chrono::steady_clock::now() - start >= budget) {
            stats.out_of_time = true;
            return stats;
        }
    }
}

} // namespace kv
