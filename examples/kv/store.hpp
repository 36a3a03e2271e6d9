// SPDX-License-Identifier: MIT
// The keyspace of examples/kv: binary-safe keys to string values with an optional absolute expiry
// (Unix milliseconds). Lookups take a string_view and build no std::string; keys with an expiry
// also sit in a dense array, so background expiry samples them at random in O(1) as Redis does.
#pragma once

#include "value.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kv {

/// A value and its expiry.
struct entry {
    kv::value value;                   ///< the bytes (binary safe)
    std::int64_t expire_at = 0;        ///< Unix time in ms when the key dies; 0: never
    std::size_t volatile_index = npos; ///< position in the store's list of keys with an expiry

    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
};

/// Hash of std::string and std::string_view alike (transparent lookup: no temporary key).
struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
        return std::hash<std::string_view>{}(key);
    }
};

/// What one background expiry cycle did.
struct expire_cycle_stats {
    std::size_t sampled = 0; ///< keys with an expiry looked at
    std::size_t expired = 0; ///< of which had expired and were removed
    bool out_of_time = false; ///< stopped by the time budget while still finding expired keys
};

/// The keyspace. Not thread-safe (one loop owns it).
class store {
public:
    using map_type = std::unordered_map<std::string, entry, key_hash, std::equal_to<>>;
    using node = map_type::value_type; ///< a key and its entry; its address is stable
    using clock_type = std::function<std::int64_t()>;

    /// A store on the real clock (CLOCK_REALTIME, ms), or on `clock` (tests inject one).
    store();
    explicit store(clock_type clock);

    /// Unix time in ms, as the store sees it.
    [[nodiscard]] std::int64_t now() const { return m_clock(); }

    /// The live key, or null. A key found expired is removed first (lazy expiry) unless loading.
    [[nodiscard]] node* find(std::string_view key);

    /// The key's node, created with an empty value when missing (`created` says which).
    node& upsert(std::string_view key, bool& created);

    /// Removes `key` if it is live; true when it was.
    bool erase(std::string_view key);

    /// Sets (`at` > 0) or clears (0) the expiry of `n`.
    void set_expire(node& n, std::int64_t at);

    /// Removes every key.
    void clear();

    [[nodiscard]] std::size_t size() const noexcept { return m_map.size(); }
    [[nodiscard]] std::size_t volatile_count() const noexcept { return m_volatile.size(); }

    /// True when `n` has expired at `now()` (and is not protected by loading mode).
    [[nodiscard]] bool is_expired(const node& n) const;

    /// While loading (AOF replay) nothing expires: the log's own DEL records say what expired
    /// when it was written, and a key read back expired is removed after the load.
    void set_loading(bool on) noexcept { m_loading = on; }
    [[nodiscard]] bool is_loading() const noexcept { return m_loading; }

    /// Redis's active expiry cycle: samples up to 20 keys with an expiry, removes the expired
    /// ones, and repeats while more than a quarter of a sample had expired, until `budget` runs
    /// out.
    expire_cycle_stats active_expire_cycle(std::chrono::microseconds budget);

    /// Called with each key removed because it expired (the AOF logs a DEL for it).
    void set_expire_listener(void (*fn)(void* ctx, std::string_view key), void* ctx) noexcept {
        m_on_expired = fn;
        m_on_expired_ctx = ctx;
    }

    /// Keys removed because they expired (lazily or in the background).
    [[nodiscard]] std::uint64_t expired_keys() const noexcept { return m_expired_keys; }

    /// Every node, expired ones included (callers check is_expired()).
    [[nodiscard]] const map_type& nodes() const noexcept { return m_map; }

private:
    void expire_now(node& n);
    void unlink_volatile(node& n) noexcept;
    std::uint64_t next_random() noexcept;

    map_type m_map;                 // the keyspace
    std::vector<node*> m_volatile;  // keys with an expiry, for O(1) random sampling
    clock_type m_clock;             // Unix ms
    bool m_loading = false;         // see set_loading()
    std::uint64_t m_expired_keys = 0; // see expired_keys()
    std::uint64_t m_random = 0x9e3779b97f4a7c15ULL; // xorshift state for sampling
    void (*m_on_expired)(void*, std::string_view) = nullptr; // see set_expire_listener()
    void* m_on_expired_ctx = nullptr;
};

/// Unix time in milliseconds from CLOCK_REALTIME (the AOF stores absolute expiry times).
[[nodiscard]] std::int64_t unix_time_ms() noexcept;

} // namespace kv
