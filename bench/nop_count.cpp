// SPDX-License-Identifier: MIT
// A fixed amount of NOPs for callgrind (bench/callgrind_nops.sh): W long-lived tasks (default 32,
// the server shape; 1: one NOP per loop turn) each await N NOPs. Google Benchmark picks its own
// iteration counts, so instructions per NOP come from the difference of two runs of this one.
// With `raw` as the third argument, the hand-written twin instead: W "connections", each a
// struct its SQE points at, re-armed as its NOP completes, one submit per loop turn (the shape
// of bench_runtime's BM_runtime_nop_raw_batch32_workers).
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/uring_op.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <liburing.h>

namespace {

struct counts {
    long per_task = 0; // NOPs each task awaits
    long nops = 0;     // NOPs completed
    long failures = 0; // NOPs that completed with an error
};

corio::task<void> worker(counts* c) {
    for (long i = 0; i < c->per_task; ++i) {
        corio::result<void> r = co_await corio::nop();
        ++c->nops;
        c->failures += r ? 0 : 1;
    }
}

corio::task<void> run_all(counts* c, int tasks) {
    corio::task_scope scope;
    for (int i = 0; i < tasks; ++i)
        scope.spawn(worker(c));
    co_await scope.join();
}

/// The twin: a bare ring set up like io_context's (same flags, same SQ size, ring fd registered).
int run_raw(long per_task, int tasks) {
    corio::io_context probe; // only to learn the ring flags io_context ends up with
    io_uring_params params{};
    params.flags = probe.ring_flags();
    io_uring ring{};
    if (io_uring_queue_init_params(corio::io_context_options{}.sq_entries, &ring, &params) < 0)
        return 1;
    (void)io_uring_register_ring_fd(&ring);
    std::vector<long> done(static_cast<std::size_t>(tasks), 0);
    auto arm = [&ring](long* conn) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, conn);
    };
    for (long& conn : done)
        arm(&conn);
    long nops = 0;
    long failures = 0;
    long live = tasks;
    while (live > 0) {
        if (io_uring_submit_and_wait(&ring, 1) < 0)
            return 1;
        unsigned head;
        unsigned seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            auto* conn = static_cast<long*>(io_uring_cqe_get_data(cqe));
            failures += cqe->res < 0 ? 1 : 0;
            ++nops;
            if (++*conn < per_task)
                arm(conn);
            else
                --live;
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    std::printf("raw nops=%ld failures=%ld\n", nops, failures);
    return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: nop_count NOPS_PER_TASK [TASKS [raw]]\n");
        return 2;
    }
    counts c;
    c.per_task = std::atol(argv[1]);
    int tasks = argc > 2 ? std::atoi(argv[2]) : 32;
    if (argc > 3 && std::string_view(argv[3]) == "raw")
        return run_raw(std::atol(argv[1]), tasks);
    corio::io_context ctx;
    corio::sync_wait(ctx, run_all(&c, tasks));
    std::printf("nops=%ld failures=%ld loop_turns=%llu\n", c.nops, c.failures,
                static_cast<unsigned long long>(ctx.stats().loop_turns));
    return c.failures == 0 ? 0 : 1;
}
