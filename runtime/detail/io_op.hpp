// SPDX-License-Identifier: MIT
// The one operation pattern every ring-backed awaitable follows: no ring work before suspension,
// the op lives in the awaiting frame, the completion is stored in it, one function maps `res`.
#pragma once

#include <corio/runtime/detail/ready_queue.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/task.hpp>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <new>
#include <system_error>
#include <type_traits>

namespace corio::detail {

/// The base every in-flight SQE's user_data points at.
struct io_op : ready_node {
    /// Called by the loop for each CQE of this op, during reaping (never resumes inline).
    using complete_fn = void (*)(io_op*, int res, unsigned flags) noexcept;

    io_op() noexcept : m_complete(nullptr), m_ctx(nullptr), m_res(0), m_flags(0) {}
    /// Leaves m_complete, m_ctx and the queue link to be written when the op is started (an op
    /// settled without the ring still reports res 0).
    explicit io_op(uninitialized_t tag) noexcept : ready_node(tag), m_res(0), m_flags(0) {}

    complete_fn m_complete; // what a CQE for this op does (unused by plain single-shot ops)
    io_context* m_ctx;      // the loop the op was submitted on
    int m_res;              // the completion's res (or -ECANCELED if never submitted)
    unsigned m_flags;       // the completion's flags (IORING_CQE_F_*)
};

/// Set in the user_data of a plain single-shot op's SQE: the loop completes such an op inline
/// (store res and flags, queue the waiter) without loading a handler from it. io_op objects are
/// pointer-aligned, so the low bit of their address is free.
inline constexpr std::uintptr_t k_single_shot_tag = 1;

/// The op a user_data value names (tagged or not).
[[nodiscard]] inline io_op* op_from_user_data(std::uintptr_t data) noexcept {
    return reinterpret_cast<io_op*>(data & ~k_single_shot_tag);
}

} // namespace corio::detail

namespace corio {
inline void io_context::track(io_uring_sqe* sqe, detail::io_op* op) noexcept {
    track(sqe, op, reinterpret_cast<std::uintptr_t>(op));
}

inline void io_context::track(io_uring_sqe* sqe, detail::io_op* op,
                              std::uintptr_t user_data) noexcept {
    op->m_ctx = this;
    io_uring_sqe_set_data64(sqe, user_data);
    ++m_inflight;
    if (m_faults) [[unlikely]]
        inject_fault(sqe); // the fault-injection mode (CORIO_FAULTS) may rewrite the SQE
}
} // namespace corio

namespace corio::detail {

/// Async cancellation of one op: registered with the awaiting task's stop token while the op is
/// in flight.
struct op_canceller : stop_callback_node {
    op_canceller() noexcept : m_user_data(0), m_state(nullptr) {}
    /// Leaves every field to arm() (single_shot_op tracks whether it was armed).
    explicit op_canceller(uninitialized_t) noexcept : stop_callback_node(unset_t{}) {}

    std::uintptr_t m_user_data; // the user_data of the op's SQE (what the cancel matches)
    stop_state* m_state;        // where this canceller is registered, or null

    /// Registers with `token` to cancel `op` (plain ops; see the overload for tagged ones).
    void arm(stop_token token, io_op* op) noexcept {
        arm(token, reinterpret_cast<std::uintptr_t>(op));
    }
    void arm(stop_token token, std::uintptr_t user_data) noexcept {
        m_state = stop_access::state(token);
        if (!m_state)
            return;
        m_user_data = user_data;
        m_linked = false;
        m_invoke = [](stop_callback_node* node) noexcept {
            std::uintptr_t target = static_cast<op_canceller*>(node)->m_user_data;
            op_from_user_data(target)->m_ctx->cancel_user_data(target);
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

    /// Stores the outcome and unhooks the cancellation; the caller queues the waiter (the loop
    /// does both inline for tagged ops: see k_single_shot_tag).
    void finish(int res, unsigned flags) noexcept {
        m_res = res;
        m_flags = flags;
        if (m_slot)
            m_slot->m_user_data = 0;
        else if (m_canceller_armed)
            m_canceller.disarm();
    }

    /// finish() and queue the waiter: the end of an op that completes through m_complete.
    static void complete(io_op* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<single_shot_op*>(op);
        self->finish(res, flags);
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
/// public `static void on_complete(io_op*, int, unsigned) noexcept` gets its CQEs there (through
/// m_complete) instead of the loop's inline completion (transfer_op, which loops over several
/// SQEs, does).
///
/// EINTR never reaches the awaiter: the op is prepared and submitted again (prepare() must be
/// repeatable), or ends with ECANCELED if stop was requested meanwhile. A Derived whose SQE must
/// not run twice declares `static constexpr bool restart_on_eintr = false;` (close: the fd is
/// gone even when close reports EINTR).
template <class Derived>
class basic_op : public single_shot_op {
    // Functions, not constants: their bodies are instantiated only once Derived is complete.
    static constexpr bool has_custom_completion() noexcept {
        return requires { &Derived::on_complete; };
    }
    static constexpr bool restarts_on_eintr() noexcept {
        if constexpr (requires { Derived::restart_on_eintr; })
            return Derived::restart_on_eintr;
        else
            return true;
    }

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
    /// The user_data of this op's SQEs (what a cancel must match).
    [[nodiscard]] std::uintptr_t user_data() const noexcept {
        auto address = reinterpret_cast<std::uintptr_t>(static_cast<const io_op*>(this));
        return has_custom_completion() ? address : address | k_single_shot_tag;
    }

    /// Queues the SQE (submitted with the rest of this turn's batch). Returns false, without
    /// touching the ring, when stop was already requested: the op then reports ECANCELED.
    /// Cancellation goes through a registration of this op's own.
    bool start(std::coroutine_handle<> waiter, stop_token token) {
        if (token.stop_requested())
            return refuse_cancelled();
        queue(waiter);
        m_canceller.arm(token, user_data());
        m_canceller_armed = token.stop_possible();
        return true;
    }

    /// start() for an op awaited directly by a corio task: cancellation goes through the task's
    /// op slot (a task waits on one op at a time), registered once per task.
    bool start_in_task(std::coroutine_handle<> waiter, promise_base& task) {
        op_slot& slot = task.m_op_slot;
        if (slot.m_state != nullptr) [[likely]] {
            // Registered by an earlier op: the task's token can stop (it never changes).
            if (slot.m_state->stop_requested())
                return refuse_cancelled();
        } else {
            stop_state* state = stop_access::state(task.m_stop);
            if (state == nullptr) {
                queue(waiter); // nothing can cancel it: m_slot stays null
                return true;
            }
            if (state->stop_requested())
                return refuse_cancelled();
            slot.m_state = state;
            slot.m_invoke = &cancel_slot_op;
            state->add(&slot);
        }
        queue(waiter);
        slot.m_user_data = user_data();
        m_slot = &slot;
        return true;
    }

    /// Queues the next SQE of an op that is already registered (a loop's next step).
    void requeue(io_context& ctx) {
        io_uring_sqe* sqe = ctx.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        ctx.track(sqe, this, user_data());
    }

    /// After an EINTR completion: true when the same SQE went out again (counted as a restart);
    /// false when the op must end instead, with `res` and `flags` set to what it ends with.
    bool restart_after_eintr(int& res, unsigned& flags) noexcept {
        if (resubmit()) {
            this->m_ctx->count_restart();
            return true;
        }
        res = this->m_res;
        flags = 0;
        return false;
    }

    /// requeue() for an op between two SQEs (a retry after EINTR, a loop's next step): false,
    /// with m_res set to the reason, when it must end instead (stop was requested, or the ring
    /// failed). Its cancellation registration stays as it was: the new SQE has the same
    /// user_data.
    bool resubmit() noexcept {
        if (this->is_stop_requested()) {
            this->m_res = -ECANCELED;
            return false;
        }
        try {
            requeue(*this->m_ctx);
            return true;
        } catch (const std::system_error& e) {
            this->m_res = e.code().value() > 0 ? -e.code().value() : -EIO;
        } catch (const std::bad_alloc&) {
            this->m_res = -ENOMEM;
        } catch (...) {
            this->m_res = -EIO;
        }
        return false;
    }

private:
    void queue(std::coroutine_handle<> waiter) {
        io_context& ctx = io_context::current();
        io_uring_sqe* sqe = ctx.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        m_waiter = waiter;
        // The loop completes a tagged op inline, except after EINTR: then it calls m_complete.
        if constexpr (has_custom_completion())
            m_complete = &Derived::on_complete;
        else if constexpr (restarts_on_eintr())
            m_complete = &on_interrupted;
        else
            m_complete = &single_shot_op::complete;
        ctx.track(sqe, this, user_data());
    }

    /// A tagged op's completion when it did not take the loop's inline path: EINTR. The SQE
    /// goes out again (from inside the reap: the loop handed the CQ slots back first).
    static void on_interrupted(io_op* op, int res, unsigned flags) noexcept {
        auto* self = static_cast<basic_op*>(op);
        if (res == -EINTR && self->restart_after_eintr(res, flags))
            return;
        single_shot_op::complete(op, res, flags);
    }

    static void cancel_slot_op(stop_callback_node* node) noexcept {
        if (std::uintptr_t target = static_cast<op_slot*>(node)->m_user_data)
            op_from_user_data(target)->m_ctx->cancel_user_data(target);
    }
};

} // namespace corio::detail
