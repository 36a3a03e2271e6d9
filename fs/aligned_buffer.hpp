// SPDX-License-Identifier: MIT
// aligned_buffer: heap memory whose address and size suit O_DIRECT, handed out as std::span.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace corio {

/// The alignment O_DIRECT files get by default: a page, which satisfies every block device
/// (logical blocks are 512 or 4096 bytes).
inline constexpr std::size_t k_direct_io_alignment = 4096;

/// A zero-filled, move-only byte buffer whose start is aligned to `alignment()` (a power of two).
/// The memory is allocated rounded up to a whole number of alignment units, but `size()` is the
/// size asked for: a misaligned length stays visible to the O_DIRECT check.
class aligned_buffer {
public:
    /// An empty buffer (no allocation).
    aligned_buffer() noexcept = default;

    /// Allocates `size` zeroed bytes aligned to `alignment`. Throws std::bad_alloc.
    explicit aligned_buffer(std::size_t size, std::size_t alignment = k_direct_io_alignment)
        : m_size(size), m_alignment(alignment) {
        assert(alignment != 0 && (alignment & (alignment - 1)) == 0 && "alignment: a power of 2");
        std::size_t rounded = (size + alignment - 1) / alignment * alignment;
        if (rounded == 0)
            return;
        m_data = static_cast<std::byte*>(::operator new (rounded, std::align_val_t{alignment}));
        std::memset(m_data, 0, rounded);
    }

    /// Takes over the memory of `other`, which is left empty.
    aligned_buffer(aligned_buffer&& other) noexcept
        : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)),
          m_alignment(other.m_alignment) {}
    /// Frees this buffer's memory, then takes over that of `other`, which is left empty.
    aligned_buffer& operator=(aligned_buffer&& other) noexcept {
        if (this != &other) {
            release();
            m_data = std::exchange(other.m_data, nullptr);
            m_size = std::exchange(other.m_size, 0);
            m_alignment = other.m_alignment;
        }
        return *this;
    }
    aligned_buffer(const aligned_buffer&) = delete;
    aligned_buffer& operator=(const aligned_buffer&) = delete;
    ~aligned_buffer() { release(); }

    /// The bytes, for reads into the buffer.
    [[nodiscard]] std::span<std::byte> span() noexcept { return {m_data, m_size}; }
    /// The bytes, for writes from the buffer.
    [[nodiscard]] std::span<const std::byte> span() const noexcept { return {m_data, m_size}; }
    /// The first `n` bytes (n <= size()).
    [[nodiscard]] std::span<std::byte> first(std::size_t n) noexcept { return span().first(n); }

    /// The start of the memory (aligned), or null when empty.
    [[nodiscard]] std::byte* data() noexcept { return m_data; }
    /// The start of the memory (aligned), read-only, or null when empty.
    [[nodiscard]] const std::byte* data() const noexcept { return m_data; }
    /// The size asked for at construction.
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    /// The alignment of data().
    [[nodiscard]] std::size_t alignment() const noexcept { return m_alignment; }

private:
    void release() noexcept {
        if (m_data)
            ::operator delete (m_data, std::align_val_t{m_alignment});
        m_data = nullptr;
    }

    std::byte* m_data = nullptr;                     // owned memory, or null
    std::size_t m_size = 0;                          // bytes visible through span()
    std::size_t m_alignment = k_direct_io_alignment; // alignment of m_data (and of the allocation)
};

} // namespace corio
