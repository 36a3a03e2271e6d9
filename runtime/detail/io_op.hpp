// SPDX-License-Identifier: MIT
// The one operation pattern every ring-backed awaitable follows: no ring work before suspension,
// the op lives in the awaiting frame, the completion is stored in it, one function maps `res`.
#pragma once

#include "runtime/detail/ready_queue.hpp"
#include "runtime/io_context.hpp"
#include "runtime/result.hpp"
#include "runtime/stop.hpp"
#include "runtime/task.hpp"

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <type_traits>

namespace corio::detail {

/// The base every in-flight SQE's user_data points at.
struct io_op : ready_node {
    /// Called by the loop for each CQE of this op, during reaping (never resumes inline).
    using complete_fn = void (*)(io_op*, int res, unsigned flags) noexcept;

    io_op() noexcept : m_complete(nullptr), m_ctx(nullptr), m_res(0), m_flags(0) {}
    /// Leaves m_complete, m_ctx and the queue link to be written when the op is started.
    explicit io_op(uninitialized_t tag) noexcept : ready_node(tag), m_res(0), m_flags(0) {}

    complete_fn m_complete; // what a CQE for this op does
    io_context* m_ctx;      // the loop the op was submitted on
    int m_res;              // the completion's res (or -ECANCELED if never submitted)
    unsigned m_flags;       // the completion's flags (IORING_CQE_F_*)
};

} // namespace corio::detail

namespace corio {
inline void io_context::track(io_uring_sqe* sqe, detail::io_op* op) noexcept {
    op->m_ctx = this;
    io_uring_sqe_set_data(sqe, op);
    ++m_inflight;
}
} // namespace corio

namespace corio::detail {

/// Async cancellation of one op: registered with the awaiting task's stop token while the op is
/// in flight.
struct op_canceller : stop_callback_node {
    op_canceller() noexcept : m_op(nullptr), m_state(nullptr) {}
    /// Leaves every field to arm() (single_shot_op tracks whether it was armed).
    explicit op_canceller(uninitialized_t) noexcept : stop_callback_node(unset_t{}) {}

    io_op* m_op;            // the op to cancel
    stop_state* m_state;    // where this canceller is registered, or null

    void arm(stop_token token, io_op* op) noexcept {
        m_state = stop_access::state(token);
        if (!m_state)
            return;
        m_op = op;
        m_linked = false;
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

/// What every single-shot op shares: its cancellation and its completion (one CQE stores res
/// and flags, unhooks the cancellation and queues the waiter). Not a template, so the loop can
/// recognise it and complete it without an indirect call.
class single_shot_op : public io_op {
public:
    single_shot_op() noexcept
        : io_op(uninitialized_t{}), m_canceller_armed(false), m_canceller(uninitialized_t{}) {}
    // The kernel holds this object's address while in flight: never copy or move it then.
    single_shot_op(const single_shot_op&) noexcept : single_shot_op() {}
    single_shot_op& operator=(const single_shot_op&) = delete;

    /// The completion of every single-shot op (the loop inlines it for ops it recognises).
    static void complete(io_op* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<single_shot_op*>(op);
        self->m_res = res;
        self->m_flags = flags;
        if (self->m_slot)
            self->m_slot->m_op = nullptr;
        else if (self->m_canceller_armed)
            self->m_canceller.disarm();
        self->m_ctx->post(self);
    }

protected:
    /// True when the stop token this op registered with has been stopped (for ops that loop
    /// over several SQEs and must not start another one then).
    [[nodiscard]] bool is_stop_requested() const noexcept {
        if (m_slot)
            return m_slot->m_state->stop_requested();
        return m_canceller_armed && m_canceller.m_state->stop_requested();
    }

    /// Completes without suspending (stop was requested before the op started).
    bool refuse_cancelled() noexcept {
        m_res = -ECANCELED;
        m_flags = 0;
        return false;
    }

    op_slot* m_slot = nullptr;        // the awaiting task's slot pointing at this op, or null
    bool m_canceller_armed;           // m_canceller is registered (ops not awaited by a task)
    op_canceller m_canceller;         // own cancellation, when not awaited directly by a task
};

/// CRTP base for a single-shot op. Derived provides `void prepare(io_uring_sqe*)` and
/// `R await_resume()` (usually `return result_from_res<X>(this->m_res)`). A Derived with a
/// public `static void on_complete(io_op*, int, unsigned) noexcept` gets its CQEs there instead
/// of in single_shot_op::complete (transfer_op, which loops over several SQEs, does).
template <class Derived>
class basic_op : public single_shot_op {
public:
    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        if constexpr (std::is_base_of_v<promise_base, Promise>)
            return start_in_task(waiter, waiter.promise());
        else
            return start(waiter, stop_token_of(waiter));
    }

protected:
    /// Queues the SQE (submitted with the rest of this turn's batch). Returns false, without
    /// touching the ring, when stop was already requested: the op then reports ECANCELED.
    /// Cancellation goes through a registration of this op's own.
    bool start(std::coroutine_handle<> waiter, stop_token token) {
        if (token.stop_requested())
            return refuse_cancelled();
        queue(waiter);
        m_canceller.arm(token, this);
        m_canceller_armed = token.stop_possible();
        return true;
    }

    /// start() for an op awaited directly by a corio task: cancellation goes through the task's
    /// op slot (a task waits on one op at a time), registered once per task.
    bool start_in_task(std::coroutine_handle<> waiter, promise_base& task) {
        stop_state* state = stop_access::state(task.m_stop);
        if (state == nullptr) {
            queue(waiter);
            return true;
        }
        if (state->stop_requested())
            return refuse_cancelled();
        queue(waiter);
        op_slot& slot = task.m_op_slot;
        if (slot.m_state == nullptr) {
            slot.m_state = state;
            slot.m_invoke = &cancel_slot_op;
            state->add(&slot);
        }
        slot.m_op = this;
        m_slot = &slot;
        return true;
    }

    /// Queues the next SQE of an op that is already registered (a loop's next step).
    void requeue(io_context& ctx) {
        io_uring_sqe* sqe = ctx.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        ctx.track(sqe, this);
    }

private:
    void queue(std::coroutine_handle<> waiter) {
        io_context& ctx = io_context::current();
        io_uring_sqe* sqe = ctx.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        m_waiter = waiter;
        if constexpr (requires { &Derived::on_complete; })
            m_complete = &Derived::on_complete;
        else
            m_complete = &single_shot_op::complete;
        ctx.track(sqe, this);
    }

    static void cancel_slot_op(stop_callback_node* node) noexcept {
        if (io_op* op = static_cast<op_slot*>(node)->m_op)
            op->m_ctx->cancel(op);
    }
};

} // namespace corio::detail
