// SPDX-License-Identifier: MIT
// The fault-injection mode behind io_context_options::faults and CORIO_FAULTS: decides, per SQE
// at submission, whether to shorten it or to replace it by a NOP whose completion is rewritten.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/io_context.hpp>

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace corio::detail {

/// One io_context's fault injector. Exists only while the mode is on: the loop's hot path tests
/// one pointer and calls nothing when it is off.
class fault_injector {
public:
    fault_injector(io_context& ctx, const fault_options& options);
    fault_injector(const fault_injector&) = delete;
    fault_injector& operator=(const fault_injector&) = delete;

    [[nodiscard]] const fault_options& options() const noexcept { return m_options; }

    /// Looks at `sqe`, just tracked with its user_data set, and maybe rewrites it. True when it
    /// injected a fault.
    bool on_submit(io_uring_sqe* sqe) noexcept;

    /// An IORING_OP_ASYNC_CANCEL SQE was queued (`tracked`: through track(), so its completion
    /// can be adjusted). The real ops a faulted SQE stands for would have been pending when the
    /// cancel came: the matching NOPs still in flight complete their ops with ECANCELED instead
    /// of the chosen error, and a tracked cancel reports them in its count, as the kernel would
    /// have.
    void on_cancel(io_uring_sqe* sqe, bool tracked) noexcept;

private:
    /// A faulted SQE's stand-in: what its completion is turned into.
    struct record : io_op {
        std::uintptr_t m_target = 0;       // the user_data of the op the SQE belongs to
        int m_fd = -1;                     // the fd the real op named (-1: a fixed file)
        int m_error = 0;                   // a NOP: the errno its completion carries
        unsigned m_extra = 0;              // a cancel: the faulted ops it counts as cancelled
        bool m_is_cancel = false;          // wraps a real cancel instead of standing in as a NOP
        bool m_cancel_all = false;         // that cancel had IORING_ASYNC_CANCEL_ALL
        bool m_transient = false;          // its retry must not be faulted again
        bool m_in_flight = false;          // its CQE is still due
        bool m_cancelled = false;          // a cancel aimed at the real op came after it
        fault_injector* m_owner = nullptr; // where the record goes back to
        record* m_next_free = nullptr;     // free list link
    };

    /// What an fd is, as far as the rewrites care (looked up only for an SQE being faulted).
    enum class fd_kind : unsigned char {
        stream_socket,
        other_socket,
        regular_file,
        direct_file,
        other
    };

    static void on_nop(io_op* op, int res, unsigned flags) noexcept;
    [[nodiscard]] static fd_kind classify(const io_uring_sqe* sqe) noexcept;
    /// The faults this SQE may get, as fault_options bits (before m_options.kinds is applied).
    [[nodiscard]] static unsigned eligible(const io_uring_sqe* sqe, fd_kind kind) noexcept;
    /// The errno a fault of `kind` (one bit) ends `sqe` with.
    [[nodiscard]] int error_for(unsigned kind, const io_uring_sqe* sqe) noexcept;
    /// Replaces `sqe` by a NOP that completes its op with -`error`. False when out of memory.
    bool replace_by_nop(io_uring_sqe* sqe, int error, bool transient) noexcept;
    /// A record from the free list (or a new one); null when out of memory.
    record* take_record(std::uintptr_t target) noexcept;
    /// True (and forgets it) when `user_data` is the retry of an op given a transient error.
    bool is_exempt(std::uintptr_t user_data) noexcept;

    [[nodiscard]] std::uint64_t next() noexcept;                 // splitmix64
    [[nodiscard]] double uniform() noexcept;                     // in [0, 1)
    [[nodiscard]] std::uint64_t below(std::uint64_t n) noexcept; // in [0, n)

    io_context* m_ctx;                              // the loop whose SQEs are rewritten
    fault_options m_options;                        // seed, rate, kinds
    std::uint64_t m_state;                          // the PRNG state (from the seed)
    std::vector<std::unique_ptr<record>> m_records; // every record made (they are reused)
    record* m_free = nullptr;                       // records not in flight
    std::vector<std::uintptr_t> m_exempt;           // ops whose next SQE is a retry: left alone
};

} // namespace corio::detail
