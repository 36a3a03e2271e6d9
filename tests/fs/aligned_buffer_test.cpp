// SPDX-License-Identifier: MIT
#include <corio/fs/aligned_buffer.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <utility>

using corio::aligned_buffer;

TEST_CASE("aligned_buffer starts at its alignment and is zero-filled") {
    for (std::size_t alignment : {512u, 4096u, 65536u}) {
        CAPTURE(alignment);
        aligned_buffer buf(10000, alignment);
        CHECK(reinterpret_cast<std::uintptr_t>(buf.data()) % alignment == 0);
        CHECK(buf.size() == 10000);
        CHECK(buf.alignment() == alignment);
        CHECK(buf.span().size() == 10000);
        CHECK(std::all_of(buf.span().begin(), buf.span().end(),
                          [](std::byte b) { return b == std::byte{0}; }));
    }
}

TEST_CASE("aligned_buffer defaults to 4096-byte alignment") {
    aligned_buffer buf(4096);
    CHECK(buf.alignment() == 4096);
    CHECK(reinterpret_cast<std::uintptr_t>(buf.data()) % 4096 == 0);
}

TEST_CASE("moving an aligned_buffer transfers the memory and empties the source") {
    aligned_buffer a(4096);
    a.span()[7] = std::byte{42};
    std::byte* memory = a.data();
    aligned_buffer b(std::move(a));
    CHECK(b.data() == memory);
    CHECK(b.span()[7] == std::byte{42});
    CHECK(a.data() == nullptr);
    CHECK(a.size() == 0);
    aligned_buffer c(512, 512);
    c = std::move(b);
    CHECK(c.data() == memory);
    CHECK(c.alignment() == 4096);
}

TEST_CASE("an empty aligned_buffer allocates nothing") {
    aligned_buffer empty;
    CHECK(empty.data() == nullptr);
    CHECK(empty.span().empty());
    aligned_buffer zero(0);
    CHECK(zero.data() == nullptr);
}
