// SPDX-License-Identifier: MIT
// The epoll backend: where io_uring is refused, the loop keeps its SQ/CQ interface and this
// class plays the kernel's part in user space. It reads the SQEs the awaitables prepared, runs
// each the way a readiness-based server would (try the non-blocking syscall, on EAGAIN wait for
// the fd's edge in epoll), runs file work on blocking threads, keeps link timeouts and timeouts
// in a heap, and posts the results as CQEs into a ring of its own that the loop reaps as usual.
// So every awaitable in corio works unchanged, and the io_uring path pays nothing for it.
#pragma once

#include <corio/runtime/detail/timer_queue.hpp>

#include <liburing.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace corio::detail {

/// Pointers by a 64-bit key (never 0): open addressing with linear probing, deletion by backward
/// shift, so a steady number of entries allocates nothing (an insert and an erase per waiting op
/// are on the epoll backend's hot path; std::unordered_map paid a node allocation for each).
template <class T>
class pointer_index {
public:
    void insert(std::uint64_t key, T* value) {
        if ((m_size + 1) * 2 > m_slots.size())
            grow();
        std::size_t i = hash(key) & m_mask;
        while (m_slots[i].m_key != 0)
            i = (i + 1) & m_mask;
        m_slots[i] = {key, value};
        ++m_size;
    }
    /// The first entry for `key`, or null.
    [[nodiscard]] T* find(std::uint64_t key) const noexcept {
        if (m_size == 0)
            return nullptr;
        for (std::size_t i = hash(key) & m_mask; m_slots[i].m_key != 0; i = (i + 1) & m_mask)
            if (m_slots[i].m_key == key)
                return m_slots[i].m_value;
        return nullptr;
    }
    /// Removes the entry mapping `key` to `value`, if there is one.
    void erase(std::uint64_t key, const T* value) noexcept {
        if (m_size == 0)
            return;
        std::size_t i = hash(key) & m_mask;
        while (m_slots[i].m_key != key || m_slots[i].m_value != value) {
            if (m_slots[i].m_key == 0)
                return;
            i = (i + 1) & m_mask;
        }
        // Backward shift: pull later entries of the probe run into the hole.
        for (std::size_t j = (i + 1) & m_mask; m_slots[j].m_key != 0; j = (j + 1) & m_mask) {
            std::size_t home = hash(m_slots[j].m_key) & m_mask;
            if (((j - home) & m_mask) >= ((j - i) & m_mask)) {
                m_slots[i] = m_slots[j];
                i = j;
            }
        }
        m_slots[i] = {};
        --m_size;
    }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    [[nodiscard]] bool empty() const noexcept { return m_size == 0; }
    /// Every value (in no particular order), copied out: callers change the index meanwhile.
    [[nodiscard]] std::vector<T*> values() const {
        std::vector<T*> all;
        all.reserve(m_size);
        for (const slot& s : m_slots)
            if (s.m_key != 0)
                all.push_back(s.m_value);
        return all;
    }

private:
    struct slot {
        std::uint64_t m_key = 0; // 0: empty
        T* m_value = nullptr;
    };
    static std::size_t hash(std::uint64_t k) noexcept { // a 64-bit finaliser (murmur3's)
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        return static_cast<std::size_t>(k);
    }
    void grow() {
        std::vector<slot> old = std::move(m_slots);
        m_slots.assign(old.empty() ? 64 : old.size() * 2, slot{});
        m_mask = m_slots.size() - 1;
        m_size = 0;
        for (const slot& s : old)
            if (s.m_key != 0)
                insert(s.m_key, s.m_value);
    }

    std::vector<slot> m_slots;
    std::size_t m_mask = 0;
    std::size_t m_size = 0;
};

class epoll_backend {
public:
    /// Sets up the epoll instance and the emulated rings (sizes rounded up to powers of two).
    /// Throws std::system_error when epoll or eventfd cannot be created.
    epoll_backend(unsigned sq_entries, unsigned cq_entries, unsigned blocking_threads);
    ~epoll_backend();
    epoll_backend(const epoll_backend&) = delete;
    epoll_backend& operator=(const epoll_backend&) = delete;

    /// Points `ring`'s SQ and CQ at the emulated rings: the loop's get_sqe() and reap() then
    /// work on them exactly as on a kernel ring.
    void attach(io_uring& ring) noexcept;

    /// Runs every SQE queued in `ring` (what io_uring_enter's submit would do). Returns how many.
    unsigned submit(io_uring& ring);

    /// Waits up to `wait_ns` (negative: no limit, 0: just look) for readiness, timeouts and
    /// finished blocking work, and posts their CQEs. Never waits while CQEs are unreaped.
    /// Returns true when it made a system call.
    bool wait(std::int64_t wait_ns);

    /// IORING_REGISTER_PBUF_RING's part: a provided-buffer ring the backend picks buffers from.
    /// Returns 0 or -errno (EEXIST for a group id in use).
    int register_buffer_ring(const io_uring_buf_reg& reg);
    /// IORING_UNREGISTER_PBUF_RING's part. Returns 0 or -ENOENT.
    int unregister_buffer_ring(unsigned group_id);

    /// The descriptor is being closed behind the backend's back (a synchronous ::close()): its
    /// readiness state is dropped and ops still waiting on it end with ECANCELED.
    void forget_fd(int fd) noexcept;

    /// CQEs that found the CQ full and waited in the overflow list (none is ever dropped).
    [[nodiscard]] std::uint64_t overflows() const noexcept { return m_cq_overflow; }

    struct op;

private:
    struct fd_state;
    struct buffer_ring_state {
        io_uring_buf_ring* m_ring = nullptr; // the user's descriptor ring (they own the tail)
        unsigned m_mask = 0;                 // entries - 1
        std::uint16_t m_head = 0;            // next buffer to take (the kernel's private head)
    };
    struct chain; // SQEs linked after an op, started when it completes

    // ----- submission -----
    void start(const io_uring_sqe& sqe, std::unique_ptr<chain> rest);
    /// A plain recv/send completed (or failed) by one syscall, without an op record. False when
    /// the general path must take it (nothing was moved then).
    bool try_at_once(const io_uring_sqe& sqe) noexcept;
    void start_readiness(op* o);
    void start_blocking(op* o);
    void start_timeout(op* o);
    int cancel(const io_uring_sqe& sqe);
    void cancel_op(op* o, int res) noexcept;

    // ----- completion -----
    void post(std::uint64_t user_data, int res, unsigned flags) noexcept;
    void finish(op* o, int res, unsigned flags = 0) noexcept;
    void continue_chain(std::unique_ptr<chain> rest, bool failed) noexcept;
    void flush_overflow() noexcept;
    [[nodiscard]] bool cq_has_entries() const noexcept { return m_cq_tail != m_cq_head; }

    // ----- readiness -----
    /// One try of a waiting op: its result, or kAgain to keep waiting.
    int attempt(op* o) noexcept;
    int attempt_recv(op* o) noexcept;
    int attempt_multishot(op* o) noexcept;
    void park(op* o) noexcept;
    void unpark(op* o) noexcept;
    void run_waiters(int fd, bool reading) noexcept;
    void on_event(int fd, std::uint32_t events) noexcept;
    fd_state& state_of(int fd);
    bool register_fd(int fd, fd_state& st) noexcept;

    // ----- blocking work -----
    void worker_main() noexcept;
    void collect_finished() noexcept;
    /// Takes a blocking op off the threads' queue; false when a thread already runs it.
    bool take_back_queued(op* o) noexcept;

    // ----- timeouts -----
    static void on_timer(timer_node* node, bool expired) noexcept;

    op* make_op(const io_uring_sqe& sqe);
    void free_op(op* o) noexcept;
    void index(op* o);
    void unindex(op* o) noexcept;

    // The emulated rings (the kernel's side of the shared memory).
    std::vector<io_uring_sqe> m_sqes;
    std::vector<unsigned> m_sq_array;
    unsigned m_sq_head = 0, m_sq_tail = 0, m_sq_flags = 0, m_sq_dropped = 0;
    unsigned m_sq_mask = 0, m_sq_entries = 0;
    std::vector<io_uring_cqe> m_cqes;
    unsigned m_cq_head = 0, m_cq_tail = 0, m_cq_flags = 0, m_cq_overflow = 0;
    unsigned m_cq_mask = 0, m_cq_entries = 0;
    std::deque<io_uring_cqe> m_overflow; // CQEs waiting for room (never dropped)

    int m_epoll_fd = -1;
    std::vector<fd_state> m_fds;           // indexed by descriptor
    std::vector<int> m_retry_fds;          // fds with waiters to run again without an event
    pointer_index<op> m_by_user_data;      // waiting ops, for cancellation
    std::unordered_map<unsigned, buffer_ring_state> m_buffer_rings;
    timer_queue m_timeouts;                // TIMEOUT and LINK_TIMEOUT deadlines
    op* m_free = nullptr;                  // recycled op records (a list through op::m_next)
    bool m_have_pwait2 = true;             // epoll_pwait2 exists (Linux 5.11)
    unsigned m_polls_skipped = 0;          // waits that skipped epoll because CQEs were waiting

    // Blocking work (files): a few threads, started on first use.
    unsigned m_thread_count;
    std::vector<std::thread> m_threads;
    std::mutex m_mutex;                    // guards the three below
    std::condition_variable m_work_ready;
    std::deque<op*> m_queued;              // waiting for a thread
    std::vector<op*> m_finished;           // done, result in op::m_res
    bool m_stopping = false;
    int m_done_fd = -1;                    // eventfd the threads write when work finished
};

} // namespace corio::detail
