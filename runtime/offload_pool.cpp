// SPDX-License-Identifier: MIT
// Worker threads for offload(): a mutex-guarded FIFO, no work stealing (the jobs are blocking
// calls, not CPU-bound micro tasks).
#include <corio/runtime/detail/offload_pool.hpp>

#include <corio/runtime/io_context.hpp>

namespace corio::detail {

offload_pool::offload_pool(unsigned threads) {
    if (threads == 0)
        threads = 1;
    m_workers.reserve(threads);
    for (unsigned i = 0; i < threads; ++i)
        m_workers.emplace_back([this] { work(); });
}

offload_pool::~offload_pool() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    for (std::thread& worker : m_workers)
        worker.join();
}

void offload_pool::submit(offload_job* job) {
    job->m_next_job = nullptr;
    {
        std::lock_guard lock(m_mutex);
        (m_tail ? m_tail->m_next_job : m_head) = job;
        m_tail = job;
    }
    m_wake.notify_one();
}

void offload_pool::work() noexcept {
    for (;;) {
        offload_job* job;
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [this] { return m_head != nullptr || m_stopping; });
            if (m_head == nullptr)
                return; // stopping and drained
            job = m_head;
            m_head = job->m_next_job;
            if (m_head == nullptr)
                m_tail = nullptr;
        }
        job->m_run(job);
        job->m_ctx->post_remote(job);
    }
}

} // namespace corio::detail
