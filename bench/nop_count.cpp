// SPDX-License-Identifier: MIT
// A fixed amount of NOPs for callgrind (bench/callgrind_nops.sh): W long-lived tasks (default 32,
// the server shape; 1: one NOP per loop turn) each await N NOPs. Google Benchmark picks its own
// iteration counts, so instructions per NOP come from the difference of two runs of this one.
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/uring_op.hpp>

#include <cstdio>
#include <cstdlib>

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

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: nop_count NOPS_PER_TASK [TASKS]\n");
        return 2;
    }
    counts c;
    c.per_task = std::atol(argv[1]);
    int tasks = argc > 2 ? std::atoi(argv[2]) : 32;
    corio::io_context ctx;
    corio::sync_wait(ctx, run_all(&c, tasks));
    std::printf("nops=%ld failures=%ld loop_turns=%llu\n", c.nops, c.failures,
                static_cast<unsigned long long>(ctx.stats().loop_turns));
    return c.failures == 0 ? 0 : 1;
}
