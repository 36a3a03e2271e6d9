// SPDX-License-Identifier: MIT
// The op base for the `_all`/`_exact` loops of files and sockets: one awaiter that may issue
// several SQEs in a row without a coroutine frame, and that can settle a request before submission.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/detail/resubmit_queue.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/stop.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <new>
#include <system_error>

namespace corio::detail {

/// CRTP base of the looping ops. Derived provides:
///   `bool is_settled()`            - refused or empty: finish without the ring (await_ready);
///   `void prepare(io_uring_sqe*)`  - preps the SQE for what is still to do;
///   `bool advance(int res)`        - records a positive completion, true when another SQE is due;
///   `R await_resume()`             - maps the outcome.
/// It starts and registers its cancellation like every basic_op (through the awaiting task's
/// slot: no stop-callback list insert per op). While the op loops, its next SQE is queued from
/// the ready queue in the same turn (never inside the CQE iteration) and goes out with the
/// loop's next batch; the awaiter is resumed once, at the end.
template <class Derived>
class transfer_op : public basic_op<Derived>, private resubmit_node {
public:
    transfer_op() noexcept = default;
    // The kernel holds this object's address while in flight: never copy or move it then.
    transfer_op(const transfer_op&) noexcept : basic_op<Derived>(), resubmit_node() {}
    transfer_op& operator=(const transfer_op&) = delete;

    [[nodiscard]] bool await_ready() const noexcept {
        return static_cast<const Derived*>(this)->is_settled();
    }

    /// Every CQE of the op (basic_op routes them here): another step, the same step again
    /// after EINTR, or the end.
    static void on_complete(io_op* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<transfer_op*>(op);
        if (res == -EINTR) {
            // At once, like a plain op's restart (the loop handed the CQ slots back before
            // calling us): a cancel queued from now on finds the new SQE in the kernel.
            if (self->restart_after_eintr(res, flags))
                return;
        } else if (res > 0 && static_cast<Derived*>(self)->advance(res)) {
            self->m_res = res;
            self->m_resubmit = &on_resubmit;
            defer_resubmit(*self->m_ctx, self);
            return;
        }
        single_shot_op::complete(op, res, flags); // unregisters and queues the waiter
    }

private:
    static void on_resubmit(resubmit_node* node) noexcept {
        auto* self = static_cast<transfer_op*>(node);
        if (!self->resubmit())
            single_shot_op::complete(self, self->m_res, 0);
    }
};

} // namespace corio::detail
