// SPDX-License-Identifier: MIT
// The read/write awaiters behind corio::file: contiguous and vectored, `_some` (one SQE) and the
// loops (`read_at`, `_exact`, `_all`), with the O_DIRECT alignment check done before submission.
#pragma once

#include <corio/fs/fs_error.hpp>
#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/detail/transfer_op.hpp>
#include <corio/runtime/result.hpp>

#include <liburing.h>
#include <sys/uio.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <span>
#include <type_traits>
#include <vector>

namespace corio::fs_detail {

/// How far a read or write goes.
enum class transfer_mode : unsigned char {
    some,      // one SQE; whatever it transfers
    until_eof, // reads: until the buffer is full or end of file (a short count means EOF)
    exact,     // reads: until full; end of file first is io_errc::eof
    all,       // writes: until everything is written
};

/// The most one read/write SQE moves (Linux MAX_RW_COUNT); larger requests loop or are partial.
inline constexpr std::size_t k_max_rw_chunk = 0x7ffff000;

/// Offsets above this would be taken as "the current position" (-1) or rejected by the kernel.
inline constexpr std::uint64_t k_max_offset = std::numeric_limits<std::int64_t>::max();

/// The offset that means "at the file position, and advance it" (-1; kernel 5.6+): for pipes,
/// terminals and sockets, and for stdout that may be a file opened with O_APPEND.
inline constexpr std::uint64_t k_current_position = ~std::uint64_t{0};

/// The offset of the next SQE of a loop that has moved `done` bytes.
[[nodiscard]] inline std::uint64_t offset_after(std::uint64_t offset, std::size_t done) noexcept {
    return offset == k_current_position ? offset : offset + done;
}

[[nodiscard]] inline unsigned clamp_chunk(std::size_t n) noexcept {
    return static_cast<unsigned>(n < k_max_rw_chunk ? n : k_max_rw_chunk);
}

/// True when `value` is a multiple of `alignment` (a power of two; 0 means "no O_DIRECT").
[[nodiscard]] inline bool is_aligned(std::uint64_t value, std::size_t alignment) noexcept {
    return alignment == 0 || (value & (alignment - 1)) == 0;
}

[[nodiscard]] inline bool is_direct_request_ok(const void* data, std::uint64_t offset,
                                               std::size_t size, std::size_t alignment) noexcept {
    return is_aligned(reinterpret_cast<std::uintptr_t>(data), alignment) &&
           (offset == k_current_position || is_aligned(offset, alignment)) &&
           is_aligned(size, alignment);
}

/// The outcome of a single-SQE read or write: its one completion's res, so it is right also
/// when with_timeout() drove it.
[[nodiscard]] inline result<std::size_t> some_outcome(fs_errc refused, int res) noexcept {
    if (refused != fs_errc{})
        return make_error_code(refused);
    return detail::result_from_res<std::size_t>(res);
}

/// The outcome of a loop: everything (one compare on that path), or the error with the bytes
/// moved before it. A loop ends short only on an error, end of file (res 0: success for
/// until_eof, io_errc::eof for exact) or a write that moved nothing.
[[nodiscard]] inline transfer_result loop_outcome(fs_errc refused, int res, std::size_t done,
                                                  std::size_t wanted, transfer_mode mode) noexcept {
    if (refused != fs_errc{})
        return make_error_code(refused);
    if (done == wanted) [[likely]]
        return done;
    if (res < 0)
        return {errno_code(-res), done};
    if (mode == transfer_mode::until_eof)
        return done;
    if (mode == transfer_mode::exact)
        return {io_errc::eof, done};
    return {fs_errc::write_made_no_progress, done};
}

/// What a read/write op resumes with: result<size_t> for one SQE, transfer_result for a loop.
template <bool Loop>
using rw_result = std::conditional_t<Loop, transfer_result, result<std::size_t>>;

template <bool Loop>
[[nodiscard]] inline rw_result<Loop> rw_outcome(fs_errc refused, int res, std::size_t done,
                                                std::size_t wanted, transfer_mode mode) noexcept {
    if constexpr (Loop)
        return loop_outcome(refused, res, done, wanted, mode);
    else
        return some_outcome(refused, res);
}

/// What a request looks like before it reaches the ring: refused (misaligned O_DIRECT) or empty.
/// NOTE: holds an fs_errc, not a std::error_code, whose constructor calls system_category()
/// (an out-of-line libstdc++ call) on every op.
class request_check {
public:
    /// Refused or empty: the outcome is known without the ring.
    [[nodiscard]] bool is_settled() const noexcept { return m_skip || m_refused != fs_errc{}; }

protected:
    /// Refuses the op before submission with `error` (await_resume reports it).
    void refuse(fs_errc error) noexcept { m_refused = error; }
    /// Completes the op without submission and without error (an empty transfer).
    void skip() noexcept { m_skip = true; }
    /// Why the op was refused (fs_errc{} when it was not).
    [[nodiscard]] fs_errc refusal() const noexcept { return m_refused; }

private:
    fs_errc m_refused{}; // refused before submission (e.g. misaligned O_DIRECT), or 0
    bool m_skip = false; // nothing to do: complete without the ring
};

/// The single-SQE ops build on the runtime's basic_op (the canonical op); the loops on
/// transfer_op, which can issue several SQEs for one co_await.
template <class Derived, bool Loop>
using rw_base = std::conditional_t<Loop, detail::transfer_op<Derived>, detail::basic_op<Derived>>;

/// A contiguous read or write (IORING_OP_READ/WRITE, kernel 5.6+). Resumes with the bytes moved.
/// Single-SQE (Loop = false) it also works under with_timeout(): a refused or empty request then
/// submits a NOP and still reports its own outcome.
template <bool IsWrite, bool Loop>
class [[nodiscard]] contiguous_op : public rw_base<contiguous_op<IsWrite, Loop>, Loop>,
                                    public request_check {
public:
    using byte_type = std::conditional_t<IsWrite, const std::byte, std::byte>;

    contiguous_op(int fd, std::span<byte_type> buffer, std::uint64_t offset, transfer_mode mode,
                  std::size_t direct_alignment) noexcept
        : m_fd(fd), m_data(buffer.data()), m_size(buffer.size()), m_offset(offset), m_mode(mode) {
        assert((mode == transfer_mode::some) != Loop && "a loop mode needs a looping op");
        assert((offset <= k_max_offset || offset == k_current_position) && "offset > INT64_MAX");
        if (!is_direct_request_ok(m_data, offset, m_size, direct_alignment))
            refuse(fs_errc::misaligned_direct_io);
        else if (m_size == 0)
            skip();
    }

    [[nodiscard]] bool await_ready() const noexcept { return is_settled(); }

    void prepare(io_uring_sqe* sqe) noexcept {
        if (is_settled()) {
            io_uring_prep_nop(sqe); // only under with_timeout(), which skips await_ready
            return;
        }
        std::uint64_t at = offset_after(m_offset, m_done);
        if constexpr (IsWrite)
            io_uring_prep_write(sqe, m_fd, m_data + m_done, clamp_chunk(m_size - m_done), at);
        else
            io_uring_prep_read(sqe, m_fd, m_data + m_done, clamp_chunk(m_size - m_done), at);
    }
    bool advance(int res) noexcept {
        m_done += static_cast<std::size_t>(res);
        return m_done < m_size;
    }
    rw_result<Loop> await_resume() const noexcept {
        return rw_outcome<Loop>(refusal(), this->m_res, m_done, m_size, m_mode);
    }

private:
    int m_fd;               // the file
    byte_type* m_data;      // the caller's buffer (owned by the caller until resumption)
    std::size_t m_size;     // bytes to move
    std::uint64_t m_offset; // file offset of m_data[0], or k_current_position
    std::size_t m_done = 0; // bytes moved so far (loops)
    transfer_mode m_mode;   // how far to go
};

/// A vectored read or write (IORING_OP_READV/WRITEV, kernel 5.1+). Resumes with the bytes moved.
/// When a loop continues after a partial transfer, the rest of the vector is copied into the op
/// (the caller's iovec array is never modified). Single-SQE it works under with_timeout().
template <bool IsWrite, bool Loop>
class [[nodiscard]] vectored_op : public rw_base<vectored_op<IsWrite, Loop>, Loop>,
                                  public request_check {
public:
    vectored_op(int fd, std::span<const iovec> vec, std::uint64_t offset, transfer_mode mode,
                std::size_t direct_alignment) noexcept
        : m_fd(fd), m_vec(vec), m_offset(offset), m_mode(mode) {
        assert((mode == transfer_mode::some) != Loop && "a loop mode needs a looping op");
        assert((offset <= k_max_offset || offset == k_current_position) && "offset > INT64_MAX");
        bool aligned = offset == k_current_position || is_aligned(offset, direct_alignment);
        for (const iovec& v : vec) {
            m_total += v.iov_len;
            aligned = aligned && is_direct_request_ok(v.iov_base, 0, v.iov_len, direct_alignment);
        }
        if (!aligned)
            refuse(fs_errc::misaligned_direct_io);
        else if (m_total == 0)
            skip();
    }

    [[nodiscard]] bool await_ready() const noexcept { return is_settled(); }

    void prepare(io_uring_sqe* sqe) noexcept {
        if (is_settled()) {
            io_uring_prep_nop(sqe); // only under with_timeout(), which skips await_ready
            return;
        }
        std::span<const iovec> rest = m_done == 0 ? m_vec : std::span<const iovec>(m_rest);
        auto count = static_cast<unsigned>(rest.size());
        std::uint64_t at = offset_after(m_offset, m_done);
        if constexpr (IsWrite)
            io_uring_prep_writev(sqe, m_fd, rest.data(), count, at);
        else
            io_uring_prep_readv(sqe, m_fd, rest.data(), count, at);
    }

    bool advance(int res) noexcept {
        m_done += static_cast<std::size_t>(res);
        if (m_done >= m_total)
            return false;
        try {
            rebuild_rest();
        } catch (const std::bad_alloc&) {
            this->m_res = -ENOMEM;
            return false;
        }
        return true;
    }

    rw_result<Loop> await_resume() const noexcept {
        return rw_outcome<Loop>(refusal(), this->m_res, m_done, m_total, m_mode);
    }

private:
    /// m_rest = the caller's vector minus the first m_done bytes.
    void rebuild_rest() {
        m_rest.clear();
        std::size_t skip = m_done;
        for (const iovec& v : m_vec) {
            if (skip >= v.iov_len) {
                skip -= v.iov_len;
                continue;
            }
            m_rest.push_back({static_cast<char*>(v.iov_base) + skip, v.iov_len - skip});
            skip = 0;
        }
    }

    int m_fd;                     // the file
    std::span<const iovec> m_vec; // the caller's vector (and its buffers) until resumption
    std::uint64_t m_offset;       // file offset of the first byte, or k_current_position
    std::size_t m_total = 0;      // bytes the vector describes
    std::size_t m_done = 0;       // bytes moved so far (loops)
    transfer_mode m_mode;         // how far to go
    std::vector<iovec> m_rest;    // what is left after a partial transfer (loops only)
};

/// A looping op: the same awaiter with its SQE machinery hidden, so that with_timeout(), which
/// drives a single SQE, cannot be handed a loop (it would stop after the first SQE). Put a
/// deadline on a loop with timeout(task) instead.
template <class Op>
class [[nodiscard]] loop_op : private Op {
public:
    using Op::await_ready;
    using Op::await_resume;
    using Op::await_suspend;
    using Op::Op;
};

} // namespace corio::fs_detail
