// SPDX-License-Identifier: MIT
// The op base for reads and writes: one awaiter that may issue several SQEs in a row (the `_all`
// and `_exact` loops) without a coroutine frame, and that can refuse a request before submission.
#pragma once

#include "fs/detail/resubmit_queue.hpp"
#include "runtime/detail/io_op.hpp"
#include "runtime/io_context.hpp"
#include "runtime/stop.hpp"

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <new>
#include <system_error>

namespace corio::fs_detail {

/// CRTP base of the looping ops. Derived provides:
///   `bool is_settled()`            - refused or empty: finish without the ring (await_ready);
///   `void prepare(io_uring_sqe*)`  - preps the SQE for what is still to do;
///   `bool advance(int res)`        - records a positive completion, true when another SQE is due;
///   `R await_resume()`             - maps the outcome.
/// While the op loops, its next SQE is queued from the ready queue in the same turn (never inside
/// the CQE iteration) and goes out with the loop's next batch; the awaiter is resumed once, at
/// the end.
template <class Derived>
class transfer_op : public detail::io_op, private resubmit_node {
public:
    transfer_op() noexcept = default;
    // The kernel holds this object's address while in flight: never copy or move it then.
    transfer_op(const transfer_op&) noexcept : io_op(), resubmit_node() {}
    transfer_op& operator=(const transfer_op&) = delete;

    [[nodiscard]] bool await_ready() const noexcept {
        return static_cast<const Derived*>(this)->is_settled();
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        stop_token token = detail::stop_token_of(waiter);
        if (token.stop_requested()) {
            m_res = -ECANCELED;
            return false;
        }
        m_waiter = waiter;
        submit(io_context::current());
        m_canceller.arm(token, this);
        return true;
    }

private:
    void submit(io_context& ctx) {
        io_uring_sqe* sqe = ctx.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        m_complete = &on_complete;
        ctx.track(sqe, this);
    }

    static void on_complete(detail::io_op* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<transfer_op*>(op);
        self->m_res = res;
        self->m_flags = flags;
        if (res > 0 && static_cast<Derived*>(self)->advance(res)) {
            self->m_resubmit = &on_resubmit;
            defer_resubmit(*self->m_ctx, self);
            return;
        }
        self->finish();
    }

    static void on_resubmit(resubmit_node* node) noexcept {
        auto* self = static_cast<transfer_op*>(node);
        if (!self->continue_loop())
            self->finish();
    }

    void finish() noexcept {
        m_canceller.disarm();
        m_ctx->post(this);
    }

    /// Queues the next SQE of a loop; false (with m_res set to the reason) when it must end.
    bool continue_loop() noexcept {
        if (m_canceller.m_state && m_canceller.m_state->stop_requested()) {
            m_res = -ECANCELED;
            return false;
        }
        try {
            submit(*m_ctx);
            return true;
        } catch (const std::system_error& e) {
            m_res = e.code().value() > 0 ? -e.code().value() : -EIO;
        } catch (const std::bad_alloc&) {
            m_res = -ENOMEM;
        } catch (...) {
            m_res = -EIO;
        }
        return false;
    }

    detail::op_canceller m_canceller; // submits IORING_OP_ASYNC_CANCEL when the token is stopped
};

} // namespace corio::fs_detail
