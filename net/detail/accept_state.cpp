// SPDX-License-Identifier: MIT
// Multishot accept: queue what the kernel accepts, back off through the ring when out of fds,
// pause when the consumer falls behind, re-arm when the kernel ends the op.
#include <corio/net/detail/accept_state.hpp>

#include <corio/net/socket.hpp>
#include <corio/runtime/timer.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace corio::net::detail {

namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds k_first_backoff = 10ms;
constexpr std::chrono::milliseconds k_max_backoff = 100ms;

/// Out of a resource that frees up by itself (fds, memory): retry later, never at once.
bool is_resource_error(int err) noexcept {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/// accept(2) lists these as errors of the one pending connection, not of the listener: the
/// next connection may well succeed (each retry needs a new connection, so it cannot spin).
bool is_transient_error(int err) noexcept {
    switch (err) {
    case ECONNABORTED: case EPROTO: case EPERM: case EINTR: case ENETDOWN: case ENOPROTOOPT:
    case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

} // namespace

accept_state::accept_state(io_context& ctx, const basic_socket& listener, std::size_t queue_limit)
    : multishot_state(ctx), m_listener(&listener), m_queue_limit(std::max<std::size_t>(queue_limit, 1)),
      m_backoff(k_first_backoff) {
    m_timer.m_owner = this;
}

accept_state::~accept_state() {
    while (!m_queue.empty())
        ::close(m_queue.pop()); // never used by an op: no backend state
}

void accept_state::prepare(io_uring_sqe* sqe) noexcept {
    io_uring_prep_multishot_accept(sqe, m_listener->native_handle(), nullptr, nullptr,
                                   SOCK_CLOEXEC);
}

void accept_state::on_cqe(int res, unsigned) noexcept {
    bool was_pausing = m_armed ? m_pause_pending : std::exchange(m_pause_pending, false);
    if (res >= 0) {
        if (m_orphaned) {
            ::close(res);
            return;
        }
        m_queue.push(res); // bounded by m_queue_limit plus what races the pause: tiny
        ++m_accepted;
        m_backoff = k_first_backoff;
        if (m_armed && m_queue.size() >= m_queue_limit && !m_pause_pending) {
            m_need_pause = true; // the kernel backlog holds the rest until the consumer catches up
            request_service();
        }
        wake();
        return;
    }
    if (m_orphaned)
        return;
    int err = -res;
    if (is_resource_error(err)) {
        ++m_backoffs;
        if (!m_armed) {
            m_need_backoff = true;
            request_service();
        }
        return;
    }
    if ((err == ECANCELED && was_pausing) || is_transient_error(err)) {
        if (!m_armed && m_waiter)
            request_service(); // re-arm for the consumer
        return;
    }
    m_error = errno_code(err);
    wake();
}

void accept_state::service() {
    if (std::exchange(m_need_pause, false) && m_armed && !m_pause_pending) {
        m_pause_pending = true;
        ++m_pauses;
        m_loop->cancel(this);
    }
    if (std::exchange(m_need_backoff, false) && !m_timer_armed)
        arm_timer();
    if (m_waiter && !m_armed && !m_timer_armed && !has_item())
        arm();
}

void accept_state::arm_timer() {
    m_delay = corio::detail::to_timespec(m_backoff);
    m_backoff = std::min(m_backoff * 2, k_max_backoff);
    io_uring_sqe* sqe = m_loop->get_sqe();
    io_uring_prep_timeout(sqe, &m_delay, 0, 0);
    m_timer.m_complete = &on_timer;
    m_loop->track(sqe, &m_timer);
    m_timer_armed = true;
    extra_op_started();
}

void accept_state::on_timer(corio::detail::io_op* op, int res, unsigned) noexcept {
    accept_state* self = static_cast<timer_part*>(op)->m_owner;
    self->m_timer_armed = false;
    if (!self->m_orphaned) {
        if (res == -ECANCELED) {
            // Only teardown cancels the timer: the stream is over.
            self->m_error = errno_code(ECANCELED);
            self->wake();
        } else {
            self->request_service(); // back-off over: re-arm if a consumer waits
        }
    }
    self->extra_op_finished(); // may free self: last
}

void accept_state::on_orphaned() noexcept {
    if (!m_timer_armed)
        return;
    try {
        m_loop->cancel(&m_timer);
    } catch (...) {
        std::terminate();
    }
}

void accept_state::wait(stream_waiter& waiter, std::coroutine_handle<> h, stop_token token) {
    waiter.enqueue(*this, h, token);
    if (waiter.m_cancelled || m_armed || m_timer_armed)
        return;
    arm();
}

result<int> accept_state::take() noexcept {
    if (!m_queue.empty())
        return m_queue.pop();
    assert(m_error && "an accept_stream consumer woke with nothing to take");
    return m_error;
}

} // namespace corio::net::detail
