// SPDX-License-Identifier: MIT
// A type that counts its constructions and destructions: a test asserts that everything
// constructed was destroyed (no frame, value or awaiter leaked).
#pragma once

namespace corio::test {

struct counted {
    static inline int constructed = 0; // every constructor, copies and moves included
    static inline int destroyed = 0;

    int value = 0;

    counted() noexcept { ++constructed; }
    explicit counted(int v) noexcept : value(v) { ++constructed; }
    counted(const counted& other) noexcept : value(other.value) { ++constructed; }
    counted(counted&& other) noexcept : value(other.value) { ++constructed; }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() { ++destroyed; }

    [[nodiscard]] static int alive() noexcept { return constructed - destroyed; }
    static void reset() noexcept { constructed = destroyed = 0; }
};

} // namespace corio::test
