// SPDX-License-Identifier: MIT
// Internal awaiters built from SQE templates (an io_uring_sqe filled by an io_uring_prep_* call
// and copied into the ring at suspension): one SQE, or two linked SQEs awaited together.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/stop.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstring>
#include <utility>

namespace corio::fs_detail {

/// The bytes of a prepared SQE. NOTE: io_uring_sqe itself ends in a zero-size array, which
/// -Wpedantic refuses as a class member (and so as a coroutine-frame variable): keep raw bytes.
struct sqe_template {
    alignas(io_uring_sqe) unsigned char m_bytes[sizeof(io_uring_sqe)]; // a whole prepared SQE

    void copy_to(io_uring_sqe* sqe) const noexcept { std::memcpy(sqe, m_bytes, sizeof m_bytes); }
};

/// An SQE template: zeroed, then filled by `prep(io_uring_sqe*)`.
template <class Prep>
[[nodiscard]] sqe_template make_sqe(Prep prep) noexcept {
    io_uring_sqe sqe;
    std::memset(&sqe, 0, sizeof sqe);
    prep(&sqe);
    sqe_template out;
    std::memcpy(out.m_bytes, &sqe, sizeof out.m_bytes);
    return out;
}

/// Awaits one SQE copied from a template. Resumes with the raw res (negative = -errno).
class [[nodiscard]] sqe_op : public detail::basic_op<sqe_op> {
public:
    explicit sqe_op(const sqe_template& sqe) noexcept : m_sqe(sqe) {}

    void prepare(io_uring_sqe* sqe) noexcept { m_sqe.copy_to(sqe); }
    [[nodiscard]] int await_resume() const noexcept { return m_res; }

private:
    sqe_template m_sqe; // the template (what it points at belongs to the caller)
};

/// The two completions of a linked pair.
struct pair_result {
    int first = 0;  ///< res of the first SQE
    int second = 0; ///< res of the second (-ECANCELED when the link was broken by the first)
};

/// Awaits two SQEs submitted as one IOSQE_IO_LINK chain: the second starts only after the first
/// completed in full (a short first result breaks the link: the second ends with -ECANCELED).
/// Resumes after both completions; cancelling the awaiter cancels whichever is still in flight.
class [[nodiscard]] linked_pair_op : private detail::ready_node,
                                     private detail::stop_callback_node {
public:
    linked_pair_op(const sqe_template& first, const sqe_template& second) noexcept
        : m_templates{first, second} {}
    linked_pair_op(const linked_pair_op&) = delete;
    linked_pair_op& operator=(const linked_pair_op&) = delete;
    ~linked_pair_op() { disarm(); }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        stop_token token = detail::stop_token_of(waiter);
        if (token.stop_requested()) {
            m_parts[0].m_res = m_parts[1].m_res = -ECANCELED;
            return false;
        }
        io_context& ctx = io_context::current();
        ctx.reserve_sqes(2); // both must reach the kernel in one submission to stay linked
        for (int i = 0; i < 2; ++i) {
            io_uring_sqe* sqe = ctx.get_sqe();
            m_templates[i].copy_to(sqe);
            if (i == 0)
                sqe->flags |= IOSQE_IO_LINK;
            m_parts[i].m_owner = this;
            m_parts[i].m_complete = &on_part_done;
            ctx.track(sqe, &m_parts[i]);
        }
        m_ctx = &ctx;
        m_waiter = waiter;
        m_pending = 2;
        arm(token);
        return true;
    }

    [[nodiscard]] pair_result await_resume() const noexcept {
        return {m_parts[0].m_res, m_parts[1].m_res};
    }

private:
    struct part : detail::io_op {
        linked_pair_op* m_owner = nullptr; // the pair this SQE belongs to
        bool m_done = false;               // its completion arrived
    };

    void arm(stop_token token) noexcept {
        m_state = detail::stop_access::state(token);
        if (!m_state)
            return;
        m_invoke = [](detail::stop_callback_node* node) noexcept {
            auto* self = static_cast<linked_pair_op*>(node);
            for (part& p : self->m_parts)
                if (!p.m_done)
                    self->m_ctx->cancel(&p);
        };
        m_state->add(this);
    }
    void disarm() noexcept {
        if (m_state)
            m_state->remove(this);
        m_state = nullptr;
    }

    static void on_part_done(detail::io_op* op, int res, unsigned flags) noexcept {
        auto* p = static_cast<part*>(op);
        p->m_res = res;
        p->m_flags = flags;
        p->m_done = true;
        linked_pair_op* self = p->m_owner;
        if (--self->m_pending != 0)
            return;
        self->disarm();
        self->m_ctx->post(self);
    }

    sqe_template m_templates[2];           // what to submit (buffers belong to the caller)
    part m_parts[2];                       // each SQE's completion target
    io_context* m_ctx = nullptr;           // the loop the pair was submitted on
    int m_pending = 0;                     // completions still due
    detail::stop_state* m_state = nullptr; // where the cancel callback is registered, or null
};

} // namespace corio::fs_detail
