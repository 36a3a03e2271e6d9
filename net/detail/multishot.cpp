// SPDX-License-Identifier: MIT
// multishot_state: arming, the consumer's wait, deferred ring work and self-freeing orphans.
#include <corio/net/detail/multishot.hpp>

namespace corio::net::detail {

service_routine run_service(multishot_state* state) {
    for (;;) {
        bool alive = state->run_service_once();
        if (!alive)
            co_return; // the state freed itself; the frame goes with final_suspend
        co_await std::suspend_always{};
    }
}

// ----- stream_waiter -----

void stream_waiter::enqueue(multishot_state& state, std::coroutine_handle<> waiter,
                            stop_token token) noexcept {
    assert(state.m_waiter == nullptr && "a multishot stream has one consumer at a time");
    m_node.m_waiter = waiter;
    m_state = &state;
    m_cancelled = false;
    m_timed_out = false;
    state.m_waiter = this;
    m_stop = corio::detail::stop_access::state(token);
    if (!m_stop)
        return;
    m_invoke = [](corio::detail::stop_callback_node* node) noexcept {
        auto* self = static_cast<stream_waiter*>(node);
        multishot_state* s = std::exchange(self->m_state, nullptr);
        self->m_stop = nullptr;
        self->m_cancelled = true;
        s->m_waiter = nullptr;
        s->on_waiter_left();
        s->m_loop->post(&self->m_node);
    };
    m_stop->add(this); // runs the callback at once if stop was already requested
}

void stream_waiter::unregister_stop() noexcept {
    if (m_stop)
        m_stop->remove(this);
    m_stop = nullptr;
}

void stream_waiter::leave() noexcept {
    unregister_stop();
    if (multishot_state* s = std::exchange(m_state, nullptr)) {
        s->m_waiter = nullptr;
        s->on_waiter_left();
    }
}

// ----- multishot_state -----

multishot_state::multishot_state(io_context& ctx)
    : m_loop(&ctx), m_routine(run_service(this)) {
    m_service_node.m_waiter = m_routine.m_handle;
}

multishot_state::~multishot_state() {
    if (!m_in_service)
        m_routine.m_handle.destroy();
}

void multishot_state::arm() {
    io_uring_sqe* sqe = m_loop->get_sqe();
    prepare(sqe);
    m_complete = &on_complete;
    m_loop->track(sqe, this);
    m_armed = true;
    ++m_kernel_refs;
    ++m_arms;
}

void multishot_state::on_complete(corio::detail::io_op* op, int res, unsigned flags) noexcept {
    auto* self = static_cast<multishot_state*>(op);
    bool final = !(flags & IORING_CQE_F_MORE);
    if (final) {
        self->m_armed = false;
        --self->m_kernel_refs;
    }
    self->on_cqe(res, flags);
    self->free_if_done();
}

void multishot_state::extra_op_finished() noexcept {
    --m_kernel_refs;
    free_if_done();
}

void multishot_state::request_service() noexcept {
    if (m_service_queued)
        return;
    m_service_queued = true;
    m_loop->post(&m_service_node);
}

bool multishot_state::run_service_once() {
    m_service_queued = false;
    m_in_service = true;
    if (!m_orphaned)
        service();
    m_in_service = false;
    if (m_orphaned && m_kernel_refs == 0 && !m_service_queued) {
        // TRICKY: the routine is on the stack; the destructor sees m_in_service and leaves the
        // frame alone, and the routine then ends (its final_suspend frees it).
        m_in_service = true;
        delete this;
        return false;
    }
    return true;
}

void multishot_state::wake() noexcept {
    stream_waiter* w = std::exchange(m_waiter, nullptr);
    if (!w)
        return;
    w->unregister_stop();
    w->m_state = nullptr;
    m_loop->post(&w->m_node);
}

void multishot_state::orphan() noexcept {
    assert(m_waiter == nullptr && "a stream destroyed while its consumer waits in next()");
    m_orphaned = true;
    if (m_armed) {
        // Cancelling only queues an SQE; the allocation-free path cannot throw.
        try {
            m_loop->cancel(this);
        } catch (...) {
            std::terminate();
        }
    }
    on_orphaned();
    free_if_done();
}

void multishot_state::free_if_done() noexcept {
    if (m_orphaned && m_kernel_refs == 0 && !m_service_queued && !m_in_service)
        delete this;
}

} // namespace corio::net::detail
