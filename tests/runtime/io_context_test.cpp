// SPDX-License-Identifier: MIT
#include <corio/runtime/io_context.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include "tests/support/backend.hpp"
#include "tests/support/counted.hpp"
#include "tests/support/pipe.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using corio::test::counted;
using corio::test::pipe_pair;

namespace {

bool kernel_at_least(int major, int minor) {
    utsname u{};
    uname(&u);
    int ma = 0, mi = 0;
    std::sscanf(u.release, "%d.%d", &ma, &mi);
    return ma > major || (ma == major && mi >= minor);
}

task<void> nop_and_count(int* hits) {
    result<void> r = co_await nop();
    r.value();
    ++*hits;
}

task<void> sleep_and_count(int* hits) {
    result<void> r = co_await sleep_for(1ms);
    r.value();
    ++*hits;
}

task<void> spawn_all(std::vector<int>* hits, bool timers) {
    task_scope scope;
    for (int& h : *hits)
        scope.spawn(timers ? sleep_and_count(&h) : nop_and_count(&h));
    co_await scope.join();
}

/// Reads one byte from `fd` (a pipe nobody writes) and records the outcome.
task<void> read_forever(int fd, std::vector<std::error_code>* outcomes, counted witness) {
    char byte = 0;
    auto prep = [fd, &byte](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &byte, 1, -1); };
    auto read = submit(prep);
    result<uring_completion> r = co_await read;
    outcomes->push_back(r.error());
    (void)witness;
}

task<void> sleep_forever(std::vector<std::error_code>* outcomes) {
    result<void> r = co_await sleep_for(1h);
    outcomes->push_back(r.error());
}

/// Until `ops` ops are in flight and `timers` timers queued.
task<void> wait_until_pending(std::size_t ops, std::size_t timers) {
    io_context& ctx = io_context::current();
    for (;;) {
        io_context_stats s = ctx.stats();
        if (s.ops_in_flight >= ops && s.timers_pending >= timers)
            break;
        result<void> r = co_await nop();
        r.value();
    }
}

task<void> loop_until_cancelled(int* iterations) {
    for (;;) {
        result<void> r = co_await nop();
        if (!r)
            co_return;
        if (++*iterations == 100)
            io_context::current().stop();
    }
}

task<void> throw_later() {
    result<void> r = co_await nop();
    r.value();
    throw std::runtime_error("escaped");
}

} // namespace

TEST_CASE("io_context setup failure throws system_error naming io_uring and the errno") {
    io_context_options opts;
    opts.sq_entries = 0; // the kernel refuses an empty ring with EINVAL
    try {
        io_context ctx(opts);
        FAIL("io_context accepted a zero-entry ring");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::invalid_argument);
        CHECK(std::string(e.what()).find("io_uring") != std::string::npos);
    }
}

TEST_CASE("the ring is set up with SINGLE_ISSUER and DEFER_TASKRUN on kernels that have them" *
          doctest::skip(test::not_on_io_uring())) {
    io_context ctx;
    if (kernel_at_least(6, 1)) {
        CHECK((ctx.ring_flags() & IORING_SETUP_SINGLE_ISSUER) != 0);
        CHECK((ctx.ring_flags() & IORING_SETUP_DEFER_TASKRUN) != 0);
    }
    io_context_options opts;
    opts.defer_taskrun = false;
    io_context fallback(opts);
    CHECK((fallback.ring_flags() & IORING_SETUP_DEFER_TASKRUN) == 0);
}

TEST_CASE("a 4-entry ring runs 10,000 concurrent ops, each completing once") {
    io_context_options opts;
    opts.sq_entries = 4;
    opts.faults = fault_options{}; // counts SQEs exactly
    io_context ctx(opts);
    std::vector<int> hits(10'000, 0);
    sync_wait(ctx, spawn_all(&hits, false));
    CHECK(std::count(hits.begin(), hits.end(), 1) == 10'000);
    CHECK(ctx.stats().sq_full_flushes > 0);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("regression: 10,000 concurrent timers take no SQE (each was an IORING_OP_TIMEOUT, "
          "whose cancellation the kernel finds by walking every pending timeout)") {
    io_context_options opts;
    opts.sq_entries = 4;
    opts.faults = fault_options{}; // counts SQEs exactly
    io_context ctx(opts);
    std::vector<int> hits(10'000, 0);
    io_context_stats before = ctx.stats();
    sync_wait(ctx, spawn_all(&hits, true));
    io_context_stats after = ctx.stats();
    CHECK(std::count(hits.begin(), hits.end(), 1) == 10'000);
    CHECK(after.submitted == before.submitted);
    CHECK(after.timers_fired - before.timers_fired == 10'000);
    CHECK(after.timers_pending == 0);
}

TEST_CASE("a CQ overflow is recovered and every completion is delivered once") {
    io_context_options opts;
    opts.sq_entries = 16;
    opts.cq_entries = 16;
    io_context ctx(opts);
    std::vector<int> hits(5'000, 0);
    sync_wait(ctx, spawn_all(&hits, false));
    CHECK(std::count(hits.begin(), hits.end(), 1) == 5'000);
    CHECK(ctx.stats().cq_overflows > 0);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("counters count submissions, completions and turns") {
    io_context ctx;
    std::vector<int> hits(100, 0);
    auto before = ctx.stats();
    sync_wait(ctx, spawn_all(&hits, false));
    auto after = ctx.stats();
    CHECK(after.submitted - before.submitted == 100);
    CHECK(after.completed - before.completed == 100);
    CHECK(after.loop_turns > before.loop_turns);
    CHECK(after.ops_in_flight == 0);
    CHECK(after.spawned_tasks == 0);
}

TEST_CASE("destroying an io_context with pending ops cancels them and waits for them") {
    counted::reset();
    std::size_t frames_before = detail::t_live_tasks;
    pipe_pair pipe;
    std::vector<std::error_code> outcomes;
    {
        io_context ctx;
        for (int i = 0; i < 100; ++i)
            spawn(ctx, read_forever(pipe.read_end, &outcomes, counted(i)));
        for (int i = 0; i < 100; ++i)
            spawn(ctx, sleep_forever(&outcomes));
        sync_wait(ctx, wait_until_pending(100, 100));
        CHECK(ctx.stats().ops_in_flight == 100);
        CHECK(ctx.stats().timers_pending == 100);
        CHECK(ctx.stats().spawned_tasks == 200);
    }
    REQUIRE(outcomes.size() == 200);
    CHECK(std::count_if(outcomes.begin(), outcomes.end(), [](std::error_code e) {
              return e == std::errc::operation_canceled;
          }) == 200);
    CHECK(counted::alive() == 0);
    CHECK(detail::t_live_tasks == frames_before);
}

TEST_CASE("stop() makes run() return and the context still tears down cleanly") {
    int iterations = 0;
    {
        io_context ctx;
        spawn(ctx, loop_until_cancelled(&iterations));
        ctx.run();
        CHECK(iterations == 100);
    }
    // The nop queued before stop() still completes on its own during teardown; the next one is
    // refused at once because stop was requested.
    CHECK(iterations == 101);
}

TEST_CASE("run() returns when nothing is left to do") {
    io_context ctx;
    std::vector<int> hits(10, 0);
    for (int& h : hits)
        spawn(ctx, nop_and_count(&h));
    ctx.run();
    CHECK(std::count(hits.begin(), hits.end(), 1) == 10);
    CHECK(ctx.stats().spawned_tasks == 0);
}

TEST_CASE("an exception escaping a spawned task reaches the context's handler") {
    io_context ctx;
    std::string caught;
    ctx.set_unhandled_exception_handler([&caught](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            caught = ex.what();
        }
    });
    spawn(ctx, throw_later());
    ctx.run();
    CHECK(caught == "escaped");
}

TEST_CASE("spawn on a context that is not current runs the task on that context") {
    io_context first;
    io_context second; // now the current context of this thread
    std::vector<int> hits(1, 0);
    spawn(first, nop_and_count(&hits[0]));
    second.run();
    CHECK(hits[0] == 0); // nothing was queued on the wrong loop
    first.run();
    CHECK(hits[0] == 1);
}

namespace {

/// What a forked child reported.
struct child_report {
    int status = -1;  // its exit status (-1 when it did not exit normally)
    std::string said; // what it wrote to the pipe
};

/// Runs `child(message)` in a forked child, which writes `message` to a pipe and _exit()s with
/// the status `child` returns: no doctest machinery and no destructor runs there.
template <class Child>
child_report run_in_child(Child child) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        std::string message;
        int status = 3;
        try {
            status = child(message);
        } catch (...) {
            message = "an unexpected exception";
        }
        [[maybe_unused]] ssize_t n = ::write(fds[1], message.data(), message.size());
        ::_exit(status);
    }
    ::close(fds[1]);
    std::string message;
    char buffer[512];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0)
        message.append(buffer, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::move(message)};
}

task<void> read_one_byte(int fd, result<uring_completion>* out) {
    char byte = 0;
    auto prep = [fd, &byte](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &byte, 1, -1); };
    auto read = submit(prep);
    *out = co_await read;
}

} // namespace

TEST_CASE("running an io_context inherited through fork() throws a logic_error naming fork()") {
    io_context ctx;
    std::vector<int> hits(1, 0);
    std::string parent = std::to_string(::getpid());
    child_report child = run_in_child([&ctx, &hits](std::string& what) {
        spawn(ctx, nop_and_count(&hits[0]));
        try {
            ctx.run();
            what = "run() returned";
        } catch (const std::logic_error& e) {
            what = e.what();
            return 0;
        } catch (const std::exception& e) {
            what = std::string("not a logic_error: ") + e.what();
        }
        return 1;
    });
    INFO("the child said: " << child.said);
    CHECK(child.status == 0);
    CHECK(child.said.find("created in another process (pid " + parent + ")") != std::string::npos);
    CHECK(child.said.find("cannot be used after fork()") != std::string::npos);
    // The parent's context is untouched: the task the child spawned exists only in the child.
    ctx.run();
    CHECK(hits[0] == 0);
}

TEST_CASE("sync_wait on an io_context inherited through fork() throws too") {
    io_context ctx;
    child_report child = run_in_child([&ctx](std::string& what) {
        int hits = 0;
        try {
            sync_wait(ctx, nop_and_count(&hits));
            what = "sync_wait returned";
        } catch (const std::logic_error& e) {
            what = e.what();
            return 0;
        }
        return 1;
    });
    INFO("the child said: " << child.said);
    CHECK(child.status == 0);
    CHECK(child.said.find("cannot be used after fork()") != std::string::npos);
}

TEST_CASE("destroying an inherited io_context in the child leaves the parent's ring alone") {
    auto ctx = std::make_unique<io_context>();
    pipe_pair p;
    result<uring_completion> got = std::errc::io_error;
    spawn(*ctx, read_one_byte(p.read_end, &got));
    int hits = 0;
    sync_wait(*ctx, nop_and_count(&hits)); // one turn: the read is in the kernel (pipe empty)
    REQUIRE(ctx->stats().ops_in_flight == 1);
    child_report child = run_in_child([&ctx](std::string&) {
        ctx.reset(); // must neither cancel the parent's read nor submit anything to its ring
        return 0;
    });
    CHECK(child.status == 0);
    REQUIRE(::write(p.write_end, "x", 1) == 1);
    ctx->run();
    REQUIRE(got.has_value());
    CHECK(got->res == 1);
}
