// SPDX-License-Identifier: MIT
// Recycles coroutine frames per thread: a server creates and destroys task frames of a handful of
// sizes all the time, and glibc's tcache keeps only 7 chunks per size, so most frames would go
// through malloc's slow path. Disabled under AddressSanitizer, which must see every free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_FRAME_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_FRAME_POOL 0
#endif
#endif
#ifndef CORIO_FRAME_POOL
#define CORIO_FRAME_POOL 1
#endif

namespace corio::detail {

class frame_allocator {
public:
    static constexpr std::size_t k_granule = 64;    // size classes are multiples of this
    static constexpr std::size_t k_classes = 65;    // classes 1..64: frames up to 4 KiB recycled
    static constexpr std::uint32_t k_keep = 512;    // cached frames per class, at most

    [[nodiscard]] static void* allocate(std::size_t bytes) {
#if CORIO_FRAME_POOL
        std::size_t c = size_class(bytes);
        if (c < k_classes) {
            if (block* b = t_cache.heads[c]) {
                t_cache.heads[c] = b->next;
                --t_cache.counts[c];
                return b;
            }
            return ::operator new(c * k_granule);
        }
#endif
        return ::operator new(bytes);
    }

    static void deallocate(void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if CORIO_FRAME_POOL
        std::size_t c = size_class(bytes);
        if (c < k_classes) {
            if (t_cache.counts[c] < k_keep) {
                if (!t_cache.registered)
                    register_release();
                auto* b = static_cast<block*>(p);
                b->next = t_cache.heads[c];
                t_cache.heads[c] = b;
                ++t_cache.counts[c];
                return;
            }
            ::operator delete(p);
            return;
        }
#endif
        ::operator delete(p);
    }

private:
    struct block {
        block* next; // next cached frame of the same class
    };
    // Trivially destructible and constant-initialised: accessing it needs no TLS init guard.
    struct cache {
        block* heads[k_classes];            // cached frames, one list per class
        std::uint32_t counts[k_classes];    // list lengths
        bool registered;                    // the thread-exit release is registered
    };

    static std::size_t size_class(std::size_t bytes) noexcept {
        return (bytes + k_granule - 1) / k_granule;
    }

    /// Arms a thread_local whose destructor returns the cached frames when the thread exits.
    static void register_release() noexcept {
        struct releaser {
            ~releaser() {
                for (std::size_t c = 0; c < k_classes; ++c) {
                    while (block* b = t_cache.heads[c]) {
                        t_cache.heads[c] = b->next;
                        ::operator delete(b);
                    }
                    t_cache.counts[c] = 0;
                }
            }
        };
        static thread_local releaser release_at_exit;
        (void)&release_at_exit;
        t_cache.registered = true;
    }

    static inline thread_local cache t_cache{};
};

} // namespace corio::detail
