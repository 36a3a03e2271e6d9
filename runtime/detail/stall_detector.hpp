// SPDX-License-Identifier: MIT
// The stall detector's machinery: a watchdog thread per io_context samples the loop's turn
// counter and, when one turn runs past the threshold, signals the loop thread, whose handler
// records the native backtrace and the await chain; the loop prints them after the turn.
#pragma once

#include <corio/runtime/task.hpp>

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace corio::detail {

/// What the signal handler records (async-signal-safely: plain stores into preallocated room).
struct stall_capture {
    static constexpr int k_max_frames = 64; // native frames kept
    static constexpr int k_max_chain = 32;  // tasks of the await chain kept

    /// One task of the chain, innermost first.
    struct link {
        await_site m_site;                         // its latest co_await
        const char* (*m_waits_on)() noexcept;      // the awaitable type there (null: a task)
        void* m_resume;                            // the frame's resume function (names it)
    };

    std::atomic<int> m_state{0};    // 0 empty, 1 being written by the handler, 2 full
    std::uint64_t m_seq = 0;        // the turn it was taken in
    std::int64_t m_at_ns = 0;       // CLOCK_MONOTONIC when it was taken
    int m_frames = 0;               // entries of m_trace
    void* m_trace[k_max_frames]{};  // return addresses, innermost first
    int m_chain = 0;                // entries of m_links (0: no corio task was found running)
    bool m_found_by_frame = false;  // the running task was found from the resumed frame
    link m_links[k_max_chain]{};    // the running task, then each task awaiting it
};

/// One per io_context with the detector on. The loop calls begin_turn/idle/resumed/stalled on its
/// own thread (relaxed atomics: plain moves on x86); the watchdog thread only reads them.
class stall_detector {
public:
    /// Starts the watchdog thread (all signals blocked in it). `threshold` > 0.
    explicit stall_detector(std::chrono::milliseconds threshold);
    /// Stops and joins the watchdog.
    ~stall_detector();
    stall_detector(const stall_detector&) = delete;
    stall_detector& operator=(const stall_detector&) = delete;

    /// Leaves the watchdog thread running but never joins it: for a child after fork(), where
    /// that thread does not exist.
    void abandon() noexcept;

    /// The loop thread starts (or stops) running turns: the handler finds this detector through
    /// a thread-local while active.
    void activate() noexcept;
    void deactivate() noexcept;

    /// A new turn: returns its sequence number.
    std::uint64_t begin_turn() noexcept {
        std::uint64_t seq = m_seq.load(std::memory_order_relaxed) + 1;
        m_seq.store(seq, std::memory_order_relaxed);
        return seq;
    }
    /// The loop blocks in the kernel waiting for completions (not a stall) or is back from it
    /// (a fresh start: returns the new sequence number).
    void enter_idle() noexcept { m_idle.store(true, std::memory_order_relaxed); }
    std::uint64_t leave_idle() noexcept {
        std::uint64_t seq = begin_turn();
        m_idle.store(false, std::memory_order_relaxed);
        return seq;
    }
    /// The loop is about to resume the coroutine whose frame is `frame`.
    void resuming(void* frame) noexcept {
        t_running = nullptr;
        m_resumed.store(frame, std::memory_order_relaxed);
    }
    /// True when the watchdog found turn `seq` over the threshold.
    [[nodiscard]] bool stalled(std::uint64_t seq) const noexcept {
        return m_flagged_seq.load(std::memory_order_relaxed) == seq;
    }

    /// After a stalled turn: how long it ran (from the watchdog's first sight of it), and the
    /// report on stderr if the handler captured one for this turn.
    std::chrono::microseconds finish_stalled_turn(std::uint64_t seq) noexcept;

    /// The signal handler's work (runs on the loop thread).
    void capture() noexcept;

    [[nodiscard]] std::chrono::milliseconds threshold() const noexcept { return m_threshold; }

private:
    void watch();
    void print_report(std::chrono::microseconds ran) noexcept;

    const std::chrono::milliseconds m_threshold;       // a turn longer than this is a stall
    const std::chrono::microseconds m_period;          // how often the watchdog samples
    std::atomic<std::uint64_t> m_seq{0};               // turn sequence, bumped by the loop
    std::atomic<bool> m_idle{false};                   // the loop waits in the kernel
    std::atomic<bool> m_active{false};                 // the loop thread runs turns
    std::atomic<pid_t> m_tid{0};                       // the loop thread (tgkill target)
    std::atomic<void*> m_resumed{nullptr};             // the frame the loop resumed last
    std::atomic<std::uint64_t> m_flagged_seq{0};       // the latest turn found over threshold
    std::atomic<std::int64_t> m_flagged_since_ns{0};   // when the watchdog first saw that turn
    stall_detector* m_previous = nullptr;              // the thread's detector before activate()
    bool m_can_signal = false;                         // our handler owns the signal
    stall_capture m_capture;                           // the handler's record

    std::mutex m_mutex;                                // guards m_stop (watchdog wake-up)
    std::condition_variable m_wake;                    // ends the watchdog's sleep early
    bool m_stop = false;                               // the watchdog must exit
    std::thread m_thread;                              // the watchdog
};

} // namespace corio::detail
