// SPDX-License-Identifier: MIT
// The state behind a multishot accept stream: accepted fds not yet handed out, the back-off timer
// for EMFILE/ENFILE, and pausing when the queue is full.
#pragma once

#include <corio/net/detail/multishot.hpp>
#include <corio/runtime/result.hpp>

#include <linux/time_types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace corio::net {
class basic_socket;
}

namespace corio::net::detail {

class accept_state final : public multishot_state {
public:
    /// `listener` is read at every arm: after it is closed (fd -1) arming fails with EBADF
    /// instead of reaching a socket that reused the fd number.
    accept_state(io_context& ctx, const basic_socket& listener, std::size_t queue_limit);
    ~accept_state() override;

    [[nodiscard]] bool has_item() const noexcept { return !m_queue.empty() || m_error; }
    /// The oldest accepted fd, or the error that ended accepting (sticky: the stream is done).
    [[nodiscard]] result<int> take() noexcept;
    /// Registers the consumer and arms the accept unless it is live or backing off.
    void wait(stream_waiter& waiter, std::coroutine_handle<> h, stop_token token);

    std::uint64_t m_accepted = 0; // connections accepted
    std::uint64_t m_backoffs = 0; // pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM
    std::uint64_t m_pauses = 0;   // pauses because the queue was full

private:
    /// The back-off timer's own completion target.
    struct timer_part : corio::detail::io_op {
        accept_state* m_owner = nullptr; // the stream backing off
    };

    void prepare(io_uring_sqe* sqe) noexcept override;
    void on_cqe(int res, unsigned flags) noexcept override;
    void service() override;
    void on_orphaned() noexcept override;
    static void on_timer(corio::detail::io_op* op, int res, unsigned flags) noexcept;
    void arm_timer();

    const basic_socket* m_listener; // the listening socket (its fd is read at every arm)
    std::size_t m_queue_limit;       // queued fds at which accepting pauses
    small_queue<int> m_queue;        // accepted, not yet handed out
    std::error_code m_error;         // reported once to the next consumer
    timer_part m_timer;              // IORING_OP_TIMEOUT while backing off
    __kernel_timespec m_delay{};     // the back-off the kernel reads
    std::chrono::milliseconds m_backoff; // next back-off (10 ms doubling to 100 ms)
    bool m_timer_armed = false;      // the back-off timer is in flight
    bool m_need_backoff = false;     // service() must start the back-off timer
    bool m_need_pause = false;       // service() must cancel the accept (queue full)
    bool m_pause_pending = false;    // our own cancel is on its way: its ECANCELED is no error
};

} // namespace corio::net::detail
