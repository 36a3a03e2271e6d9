// SPDX-License-Identifier: MIT
// The small-file cache: admission, freshness, LRU eviction within the byte bound, and bodies that
// outlive their eviction while a response still holds them.
#include "examples/http/file_cache.hpp"

#include <doctest/doctest.h>

using namespace corio_http;
using namespace std::chrono_literals;

namespace {

cached_file make(std::size_t size, std::chrono::steady_clock::time_point when = {}) {
    cached_file f;
    f.body = std::make_shared<const std::string>(size, 'x');
    f.identity.size = size;
    f.validated = when;
    return f;
}

} // namespace

TEST_CASE("the cache admits files up to max_file, and nothing when its bound is 0") {
    file_cache cache(1 << 20, 1000, 1000ms);
    CHECK(cache.admits(1000));
    CHECK_FALSE(cache.admits(1001));
    file_cache off(0, 1000, 1000ms);
    CHECK_FALSE(off.admits(1));
}

TEST_CASE("an entry is fresh for the validity window only") {
    file_cache cache(1 << 20, 1000, 1000ms);
    auto t0 = std::chrono::steady_clock::now();
    cache.put("a", make(10, t0));
    cached_file* a = cache.find("a");
    REQUIRE(a != nullptr);
    CHECK(cache.is_fresh(*a, t0 + 999ms));
    CHECK_FALSE(cache.is_fresh(*a, t0 + 1000ms));
    CHECK(cache.find("b") == nullptr);
}

TEST_CASE("the least recently used entries are evicted to stay within the byte bound") {
    // Each entry costs its body + key + 256 bytes of overhead: 1000 + 1 + 256 = 1257.
    file_cache cache(3 * 1257, 2000, 1000ms);
    cache.put("a", make(1000));
    cache.put("b", make(1000));
    cache.put("c", make(1000));
    CHECK(cache.entries() == 3);
    CHECK(cache.bytes() == 3 * 1257);
    CHECK(cache.find("a") != nullptr); // a is now the most recently used
    std::shared_ptr<const std::string> held = cache.find("b")->body;
    CHECK(cache.find("a") != nullptr);
    cache.put("d", make(1000)); // evicts c, the least recently used
    CHECK(cache.find("c") == nullptr);
    CHECK(cache.find("a") != nullptr);
    CHECK(cache.entries() == 3);
    cache.put("e", make(1000)); // evicts b
    CHECK(cache.find("b") == nullptr);
    CHECK(held->size() == 1000);   // still alive for the response that holds it
    cache.put("huge", make(5000)); // larger than the whole bound: not stored
    CHECK(cache.find("huge") == nullptr);
    cache.erase("a");
    CHECK(cache.entries() == 2);
    CHECK(cache.bytes() == 2 * 1257);
}
