// SPDX-License-Identifier: MIT
// Timers: sleep_for/sleep_until (the loop's user-space timer queue, no SQE) and a deadline for a
// single operation (IORING_OP_LINK_TIMEOUT). A deadline for any task is timeout() in when_any.hpp.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/detail/resubmit_queue.hpp>
#include <corio/runtime/detail/timer_queue.hpp>
#include <corio/runtime/result.hpp>

#include <liburing.h>

#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <system_error>
#include <type_traits>
#include <utility>

namespace corio {

namespace detail {
template <class Rep, class Period>
[[nodiscard]] __kernel_timespec to_timespec(std::chrono::duration<Rep, Period> d) noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    if (ns < 0)
        ns = 0;
    return {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}
} // namespace detail

/// A timer: a deadline in the loop's user-space timer queue (no SQE; the loop's wait is
/// bounded by the earliest deadline). Resumes with success once the deadline has passed, on the
/// turn that notices it; with ECANCELED when the awaiting task is cancelled first (the timer
/// leaves the queue at once) or when the io_context is destroyed with it pending.
class [[nodiscard]] sleep_op : private detail::ready_node,
                               private detail::timer_node,
                               private detail::stop_callback_node {
public:
    /// A timer of `ns` nanoseconds from the moment of suspension (`absolute` false) or until
    /// the CLOCK_MONOTONIC time point `ns` (`absolute` true); use sleep_for() or sleep_until().
    sleep_op(std::int64_t ns, bool absolute) noexcept : m_ns(ns), m_absolute(absolute) {}
    /// A copy of what `other` was asked for, not queued. Queued by address while suspended: a
    /// sleep_op must not be copied or moved then.
    sleep_op(const sleep_op& other) noexcept : sleep_op(other.m_ns, other.m_absolute) {}
    sleep_op& operator=(const sleep_op&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        stop_token token = detail::stop_token_of(waiter);
        if (token.stop_requested()) {
            m_res = -ECANCELED;
            return false;
        }
        m_ctx = &io_context::current();
        m_deadline_ns = m_absolute ? m_ns : detail::monotonic_now_ns() + m_ns;
        m_fire = &on_fire;
        m_ctx->add_timer(this); // may throw std::bad_alloc: nothing registered yet
        m_waiter = waiter;
        m_stop = detail::stop_access::state(token);
        if (m_stop) {
            m_invoke = &on_stop;
            m_linked = false;
            m_stop->add(this);
        }
        return true;
    }

    result<void> await_resume() const noexcept {
        if (m_res == 0)
            return {};
        return std::error_code(-m_res, std::system_category());
    }

private:
    /// The deadline passed (expired) or the loop is being torn down (not expired).
    static void on_fire(detail::timer_node* node, bool expired) noexcept {
        auto* self = static_cast<sleep_op*>(node);
        if (self->m_stop)
            self->m_stop->remove(self);
        self->m_res = expired ? 0 : -ECANCELED;
        self->m_ctx->post(self);
    }
    /// The awaiting task was cancelled: leave the queue and resume with ECANCELED.
    static void on_stop(detail::stop_callback_node* node) noexcept {
        auto* self = static_cast<sleep_op*>(node);
        self->m_ctx->remove_timer(self);
        self->m_res = -ECANCELED;
        self->m_ctx->post(self);
    }

    std::int64_t m_ns;                     // what was asked (see the constructor)
    bool m_absolute;                       // m_ns is a time point, not a duration
    int m_res = 0;                         // 0 or -ECANCELED
    io_context* m_ctx = nullptr;           // the loop holding the timer
    detail::stop_state* m_stop = nullptr;  // where on_stop is registered, or null
};

namespace detail {
template <class Rep, class Period>
[[nodiscard]] std::int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    return ns < 0 ? 0 : static_cast<std::int64_t>(ns);
}
} // namespace detail

/// Suspends for `d` (at least; the loop resumes the timer on the turn after it expires).
template <class Rep, class Period>
[[nodiscard]] sleep_op sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
    return sleep_op(detail::to_ns(d), false);
}

/// Suspends until `deadline` on the steady clock (CLOCK_MONOTONIC on Linux).
template <class Duration>
[[nodiscard]] sleep_op
sleep_until(std::chrono::time_point<std::chrono::steady_clock, Duration> deadline) noexcept {
    return sleep_op(detail::to_ns(deadline.time_since_epoch()), true);
}

/// An op with a deadline: the op's SQE linked to an IORING_OP_LINK_TIMEOUT. If the deadline
/// passes first, the op completes with ETIMEDOUT (the kernel cancelled it). Resumes only after
/// both completions have arrived, so the op's buffer is never left with the kernel.
template <class Op>
class [[nodiscard]] timed_op : private detail::io_op {
    // The pair is one SQE plus its link timeout: an awaitable that loops over several SQEs
    // (send_all, read_exact) would lose its deadline after the first one.
    static_assert(std::is_base_of_v<detail::single_shot_op, Op> &&
                      !std::is_base_of_v<detail::resubmit_node, Op>,
                  "with_timeout() takes a single-SQE op (derived from detail::basic_op); "
                  "give a task a deadline with timeout() instead");

public:
    /// Wraps `op` with a relative deadline `limit`; use with_timeout(). Touches no ring until
    /// awaited.
    timed_op(Op op, __kernel_timespec limit) noexcept(std::is_nothrow_move_constructible_v<Op>)
        : m_op(std::move(op)), m_limit(limit) {}
    timed_op(const timed_op&) = delete;
    timed_op& operator=(const timed_op&) = delete;

    /// An op that is ready without the ring (a refused misuse, say) is not submitted at all.
    [[nodiscard]] bool await_ready() noexcept { return m_op.await_ready(); }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        stop_token token = detail::stop_token_of(waiter);
        if (token.stop_requested()) {
            op_result().m_res = -ECANCELED;
            return false;
        }
        submit_pair(io_context::current());
        m_waiter = waiter;
        m_canceller.arm(token, this);
        return true;
    }

    decltype(auto) await_resume() {
        if (m_timer_fired && op_result().m_res == -ECANCELED)
            op_result().m_res = -ETIMEDOUT;
        return m_op.await_resume();
    }

private:
    /// The inner op's completion fields, named through io_op so that an op declaring a member
    /// of the same name (say, its own m_flags) cannot shadow them.
    detail::io_op& op_result() noexcept { return static_cast<detail::io_op&>(m_op); }

    struct timer_part : detail::io_op {
        timed_op* m_owner = nullptr; // the pair this link timeout belongs to
    };

    /// Queues the op and its link timeout (again after EINTR: the deadline restarts).
    void submit_pair(io_context& ctx) {
        ctx.reserve_sqes(2); // the pair must reach the kernel in one submission to stay linked
        io_uring_sqe* sqe = ctx.get_sqe();
        m_op.prepare(sqe);
        m_complete = &on_op_done;
        // NOTE: tracked before it is linked: the fault-injection mode leaves linked SQEs alone,
        // but may fault this one (a NOP that keeps the link pairs with the timer all the same).
        ctx.track(sqe, this);
        sqe->flags |= IOSQE_IO_LINK;

        io_uring_sqe* limit_sqe = ctx.get_sqe();
        io_uring_prep_link_timeout(limit_sqe, &m_limit, 0);
        m_timer.m_owner = this;
        m_timer.m_complete = &on_timer_done;
        ctx.track(limit_sqe, &m_timer);
        m_pending = 2;
    }

    /// Both completions are in and the op said EINTR: submits the pair again (from inside the
    /// reap, which handed its CQ slots back first). False, with the op's res set to why not,
    /// when stop was requested meanwhile (ECANCELED) or the ring failed.
    bool restart() noexcept {
        detail::stop_state* stop = m_canceller.m_state;
        if (stop && stop->stop_requested()) {
            op_result().m_res = -ECANCELED;
            return false;
        }
        try {
            submit_pair(*m_ctx);
            m_ctx->count_restart();
            return true;
        } catch (const std::system_error& e) {
            op_result().m_res = e.code().value() > 0 ? -e.code().value() : -EIO;
        } catch (...) {
            op_result().m_res = -EIO;
        }
        return false;
    }

    static void on_op_done(detail::io_op* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<timed_op*>(op);
        self->op_result().m_res = res;
        self->op_result().m_flags = flags;
        self->one_done();
    }
    static void on_timer_done(detail::io_op* op, int res, unsigned) noexcept {
        timed_op* self = static_cast<timer_part*>(op)->m_owner;
        self->m_timer_fired = (res == -ETIME);
        self->one_done();
    }
    void one_done() noexcept {
        if (--m_pending != 0)
            return;
        if (op_result().m_res == -EINTR && restart())
            return;
        m_canceller.disarm();
        m_ctx->post(this);
    }

    Op m_op;                          // the operation under a deadline (prepared, not started)
    __kernel_timespec m_limit;        // read by the kernel when the pair is submitted
    timer_part m_timer;               // the link timeout's own completion target
    int m_pending = 0;                // completions still due (op and timer)
    bool m_timer_fired = false;       // the deadline passed before the op finished
    detail::op_canceller m_canceller; // cancelling the op also removes its link timeout
};

/// Gives the single operation `op` a deadline `d` (see timed_op). Kernel 5.5+.
template <class Op, class Rep, class Period>
[[nodiscard]] timed_op<Op> with_timeout(Op op, std::chrono::duration<Rep, Period> d) {
    return timed_op<Op>(std::move(op), detail::to_timespec(d));
}

} // namespace corio
