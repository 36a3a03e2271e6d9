// SPDX-License-Identifier: MIT
// The one operation pattern every ring-backed awaitable follows: no ring work before suspension,
// the op lives in the awaiting frame, the completion is stored in it, one function maps `res`.
#pragma once

#include "runtime/detail/ready_queue.hpp"
#include "runtime/io_context.hpp"
#include "runtime/result.hpp"
#include "runtime/stop.hpp"

#include <cerrno>
#include <coroutine>
#include <cstdint>

namespace corio::detail {

/// The base every in-flight SQE's user_data points at.
struct io_op : ready_node {
    /// Called by the loop for each CQE of this op, during reaping (never resumes inline).
    using complete_fn = void (*)(io_op*, int res, unsigned flags) noexcept;

    complete_fn m_complete = nullptr; // what a CQE for this op does
    io_context* m_ctx = nullptr;      // the loop the op was submitted on
    int m_res = 0;                    // the completion's res (or -ECANCELED if never submitted)
    unsigned m_flags = 0;             // the completion's flags (IORING_CQE_F_*)
};

/// Async cancellation of one op: registered with the awaiting task's stop token while the op is
/// in flight.
struct op_canceller : stop_callback_node {
    io_op* m_op = nullptr;            // the op to cancel
    stop_state* m_state = nullptr;    // where this canceller is registered, or null

    void arm(stop_token token, io_op* op) noexcept {
        m_state = stop_access::state(token);
        if (!m_state)
            return;
        m_op = op;
        m_invoke = [](stop_callback_node* node) noexcept {
            io_op* target = static_cast<op_canceller*>(node)->m_op;
            target->m_ctx->cancel(target);
        };
        m_state->add(this);
    }
    void disarm() noexcept {
        if (m_state)
            m_state->remove(this);
        m_state = nullptr;
    }
};

/// CRTP base for a single-shot op. Derived provides `void prepare(io_uring_sqe*)` and
/// `R await_resume()` (usually `return result_from_res<X>(this->m_res)`).
template <class Derived>
class basic_op : public io_op {
public:
    basic_op() noexcept = default;
    // The kernel holds this object's address while in flight: never copy or move it then.
    basic_op(const basic_op&) noexcept : io_op() {}
    basic_op& operator=(const basic_op&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        return start(waiter, stop_token_of(waiter));
    }

protected:
    /// Queues the SQE (submitted with the rest of this turn's batch). Returns false, without
    /// touching the ring, when stop was already requested: the op then reports ECANCELED.
    bool start(std::coroutine_handle<> waiter, stop_token token) {
        if (token.stop_requested()) {
            m_res = -ECANCELED;
            return false;
        }
        io_context& ctx = io_context::current();
        io_uring_sqe* sqe = ctx.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        m_waiter = waiter;
        m_complete = &on_complete;
        ctx.track(sqe, this);
        m_canceller.arm(token, this);
        return true;
    }

private:
    static void on_complete(io_op* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<basic_op*>(op);
        self->m_res = res;
        self->m_flags = flags;
        self->m_canceller.disarm();
        self->m_ctx->post(self);
    }

    op_canceller m_canceller; // submits IORING_OP_ASYNC_CANCEL when the token is stopped
};

} // namespace corio::detail
