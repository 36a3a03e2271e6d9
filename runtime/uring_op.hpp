// SPDX-License-Identifier: MIT
// The escape hatch: await any SQE you prepare yourself, so an opcode corio does not wrap yet is
// still one co_await away. Also nop(), the cheapest round trip through the ring.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/result.hpp>

#include <liburing.h>

#include <utility>

namespace corio {

/// A completion as the kernel reported it (res >= 0 here; negative res becomes an error).
struct uring_completion {
    int res = 0;        ///< the CQE's res
    unsigned flags = 0; ///< the CQE's flags (IORING_CQE_F_*)
};

/// Awaits one SQE prepared by `prep(io_uring_sqe*)`. Do not set user_data: corio owns it.
/// Everything the SQE points at must stay valid until the co_await returns. Like every corio
/// op, it never resumes with EINTR: the SQE is prepared (so `prep` is called again: keep it
/// repeatable) and submitted anew, or the op ends with ECANCELED if stop was requested meanwhile.
/// Do not submit(prep) an opcode that must not run twice (IORING_OP_CLOSE: the fd is released
/// even when close reports EINTR); write an op with `restart_on_eintr = false` (see basic_op).
template <class Prep>
class [[nodiscard]] uring_op : public detail::basic_op<uring_op<Prep>> {
public:
    /// Takes the preparing callable; it is called only when the op is awaited (and again on a
    /// restart).
    explicit uring_op(Prep prep) : m_prep(std::move(prep)) {}

    void prepare(io_uring_sqe* sqe) { m_prep(sqe); }

    result<uring_completion> await_resume() const noexcept {
        if (this->m_res < 0)
            return detail::result_from_res<int>(this->m_res).error();
        return uring_completion{this->m_res, this->m_flags};
    }

private:
    Prep m_prep; // fills in the SQE
};

/// Awaits the SQE `prep` prepares. NOTE: name a capturing lambda before the co_await (g++ 12
/// PRs 100611/99576 miscompile capturing-lambda temporaries inside co_await).
template <class Prep>
[[nodiscard]] uring_op<Prep> submit(Prep prep) {
    return uring_op<Prep>(std::move(prep));
}

/// IORING_OP_NOP: completes on the next loop turn. Useful to yield through the ring, and the
/// unit of the runtime's overhead benchmark.
class [[nodiscard]] nop_op : public detail::basic_op<nop_op> {
public:
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_nop(sqe); }
    result<void> await_resume() const noexcept { return detail::result_from_res<void>(m_res); }
};

/// An IORING_OP_NOP round trip through the ring (see nop_op); resumes with success, or ECANCELED
/// when the awaiting task was cancelled.
[[nodiscard]] inline nop_op nop() noexcept { return {}; }

} // namespace corio
