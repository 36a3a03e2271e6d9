// SPDX-License-Identifier: MIT
// What every benchmark binary's raw-liburing twin shares: a ring set up exactly like io_context's
// (same flags after its fallback, same SQ size, ring fd registered), and the labels and counters
// that show whether corio spends syscalls the twin does not.
#pragma once

#include <corio/runtime/io_context.hpp>

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <cstdio>
#include <system_error>

namespace corio::bench {

/// The IORING_SETUP_* flags a default io_context ends up with on this kernel (after its own
/// fallback), so the raw twin never runs on a better or worse ring than corio.
inline unsigned corio_ring_flags() {
    static const unsigned flags = [] {
        corio::io_context ctx;
        return ctx.ring_flags();
    }();
    return flags;
}

/// A bare ring set up like io_context's: same SQ size, same flags, ring fd registered.
class raw_ring {
public:
    raw_ring() {
        io_uring_params params{};
        params.flags = corio_ring_flags();
        int rc =
            io_uring_queue_init_params(corio::io_context_options{}.sq_entries, &m_ring, &params);
        if (rc < 0)
            throw std::system_error(-rc, std::system_category(), "bench: io_uring setup");
        (void)io_uring_register_ring_fd(&m_ring); // io_context does the same
    }
    ~raw_ring() { io_uring_queue_exit(&m_ring); }
    raw_ring(const raw_ring&) = delete;
    raw_ring& operator=(const raw_ring&) = delete;

    io_uring* get() noexcept { return &m_ring; }

private:
    io_uring m_ring{}; // the queues
};

/// Labels a result with the ring flags both sides ran with.
inline void label_flags(benchmark::State& state) {
    char text[32];
    std::snprintf(text, sizeof text, "ring_flags=0x%x", corio_ring_flags());
    state.SetLabel(text);
}

/// Kernel entries and loop turns per item (`items`: what the benchmark counts as one).
inline void count_loop(benchmark::State& state, const corio::io_context& ctx, double items) {
    if (items == 0)
        return;
    corio::io_context_stats s = ctx.stats();
    state.counters["enters_per_item"] = static_cast<double>(s.kernel_enters) / items;
    state.counters["turns_per_item"] = static_cast<double>(s.loop_turns) / items;
}

} // namespace corio::bench
