// SPDX-License-Identifier: MIT
// The thread pool behind offload(): runs blocking work off the loop thread and hands each
// finished job back to its io_context through the ring (post_remote wakes the loop).
#pragma once

#include <corio/runtime/detail/ready_queue.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace corio {
class io_context;
}

namespace corio::detail {

/// One unit of blocking work. Lives in the awaiting frame; resumed on the loop thread.
struct offload_job : ready_node {
    void (*m_run)(offload_job*) noexcept = nullptr; // runs the work on a worker thread
    offload_job* m_next_job = nullptr;              // next job in the pool's queue
    io_context* m_ctx = nullptr;                    // where to post the finished job
};

class offload_pool {
public:
    explicit offload_pool(unsigned threads);
    /// Finishes the queued jobs, then joins the workers.
    ~offload_pool();
    offload_pool(const offload_pool&) = delete;
    offload_pool& operator=(const offload_pool&) = delete;

    /// Queues `job`; a worker runs it and posts it back to job->m_ctx.
    void submit(offload_job* job);

    [[nodiscard]] std::size_t thread_count() const noexcept { return m_workers.size(); }

private:
    void work() noexcept;

    std::mutex m_mutex;                 // guards the queue and m_stopping
    std::condition_variable m_wake;     // signalled when a job arrives or on shutdown
    offload_job* m_head = nullptr;      // oldest queued job
    offload_job* m_tail = nullptr;      // newest queued job
    bool m_stopping = false;            // destructor started
    std::vector<std::thread> m_workers; // the threads
};

} // namespace corio::detail
