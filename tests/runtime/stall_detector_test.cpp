// SPDX-License-Identifier: MIT
// The stall detector (io_context_options::stall_ms, CORIO_STALL_MS) and the task dump.
#include <corio/runtime/task_dump.hpp>

#include <corio/runtime/event.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

using namespace corio;
using namespace std::chrono_literals;

namespace {

/// Sends what the code under test writes to stderr into a string.
class capture_stderr {
public:
    capture_stderr() {
        std::fflush(stderr);
        m_file = std::tmpfile();
        REQUIRE(m_file != nullptr);
        m_saved = ::dup(2);
        ::dup2(::fileno(m_file), 2);
    }
    ~capture_stderr() { restore(); }
    capture_stderr(const capture_stderr&) = delete;
    capture_stderr& operator=(const capture_stderr&) = delete;

    std::string text() {
        restore();
        std::string out;
        std::rewind(m_file);
        char buf[4096];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, m_file))
            out.append(buf, n);
        return out;
    }

private:
    void restore() {
        if (m_saved < 0)
            return;
        std::fflush(stderr);
        ::dup2(m_saved, 2);
        ::close(m_saved);
        m_saved = -1;
    }
    std::FILE* m_file = nullptr;
    int m_saved = -1;
};

/// Keeps the CPU busy for `d` (a CPU-heavy request: no system call for the detector to see).
void spin_for(std::chrono::steady_clock::duration d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

std::string here(int line) { return std::string("stall_detector_test.cpp:") + std::to_string(line); }

struct lines {
    int blocker = 0; // the co_await the blocking task last resumed from
    int middle = 0;  // where middle awaits blocker
    int root = 0;    // where root awaits middle
};

task<void> blocker(lines* at) {
    at->blocker = __LINE__; result<void> r = co_await nop();
    (void)r;
    spin_for(100ms);
}

task<void> middle(lines* at) {
    at->middle = __LINE__; co_await blocker(at);
}

task<void> root(lines* at) {
    at->root = __LINE__; co_await middle(at);
}

task<void> cooperative(int turns) {
    for (int i = 0; i < turns; ++i) {
        spin_for(500us);
        result<void> r = co_await nop();
        (void)r;
    }
}

} // namespace

TEST_CASE("a 100 ms block yields one report naming each co_await of the chain") {
    io_context_options opts;
    opts.stall_ms = 20;
    io_context ctx(opts);
    CHECK(ctx.stall_threshold() == 20ms);
    lines at;
    capture_stderr err;
    sync_wait(ctx, root(&at));
    std::string report = err.text();
    INFO(report);
    CHECK(report.find("corio: stall: a loop turn ran for ") != std::string::npos);
    CHECK(report.find("(threshold 20 ms)") != std::string::npos);
    CHECK(report.find("native backtrace") != std::string::npos);
    std::size_t chain = report.find("await chain (innermost first)");
    REQUIRE(chain != std::string::npos);
    std::size_t b = report.find(here(at.blocker), chain);
    std::size_t m = report.find(here(at.middle), chain);
    std::size_t r = report.find(here(at.root), chain);
    CHECK(b != std::string::npos);
    CHECK(m != std::string::npos);
    CHECK(r != std::string::npos);
    CHECK(b < m);
    CHECK(m < r);
    CHECK(report.find("blocker") != std::string::npos);
    io_context_stats s = ctx.stats();
    CHECK(s.stalls == 1);
    CHECK(s.longest_stall >= 20ms);
    CHECK(s.longest_stall < 10s);
}

TEST_CASE("a busy but cooperative loop yields no stall report") {
    io_context_options opts;
    opts.stall_ms = 100; // turns of about 0.5 ms: a margin of 200x for a noisy machine
    io_context ctx(opts);
    capture_stderr err;
    sync_wait(ctx, cooperative(400));
    std::string text = err.text();
    CHECK(text.find("corio: stall") == std::string::npos);
    CHECK(ctx.stats().stalls == 0);
    CHECK(ctx.stats().longest_stall == 0us);
}

namespace {
task<int> sleep_twice() {
    result<void> first = co_await sleep_for(1ms); // only a timer pending: the loop must wait for it
    result<void> second = co_await sleep_for(1ms);
    co_return (first ? 1 : 0) + (second ? 1 : 0);
}
} // namespace

TEST_CASE("regression: with the detector on, a loop whose only work is a timer waits for it and "
          "fires it (the watched turn never fired timers and spun)") {
    io_context_options opts;
    opts.stall_ms = 1000;
    io_context ctx(opts);
    CHECK(sync_wait(ctx, sleep_twice()) == 2);
    CHECK(ctx.stats().timers_fired == 2);
}

namespace {
task<void> two_blocks() {
    spin_for(60ms);
    result<void> r = co_await nop(); // the second block runs in another turn
    (void)r;
    spin_for(60ms);
}
} // namespace

TEST_CASE("two stalls within a second are both counted but reported once, signals blocked or not") {
    io_context_options opts;
    opts.stall_ms = 20;
    io_context ctx(opts);
    // A loop thread that blocks every signal (a signal_set user) still gets its backtrace.
    sigset_t all, saved;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved);
    capture_stderr err;
    sync_wait(ctx, two_blocks());
    std::string text = err.text();
    ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    INFO(text);
    CHECK(count_of(text, "corio: stall: a loop turn ran for ") == 1);
    CHECK(text.find("native backtrace taken") != std::string::npos);
    CHECK(ctx.stats().stalls == 2);
}

TEST_CASE("the stall detector is off unless asked for, and CORIO_STALL_MS turns it on") {
    const char* old = std::getenv("CORIO_STALL_MS");
    std::string saved = old ? old : "";
    ::unsetenv("CORIO_STALL_MS");
    {
        io_context ctx;
        CHECK(ctx.stall_threshold() == 0ms);
    }
    ::setenv("CORIO_STALL_MS", "250", 1);
    {
        io_context ctx;
        CHECK(ctx.stall_threshold() == 250ms);
        io_context_options off;
        off.stall_ms = 0;
        io_context quiet(off);
        CHECK(quiet.stall_threshold() == 0ms);
    }
    ::setenv("CORIO_STALL_MS", "soon", 1);
    CHECK_THROWS_AS(io_context(), std::invalid_argument);
    if (old)
        ::setenv("CORIO_STALL_MS", saved.c_str(), 1);
    else
        ::unsetenv("CORIO_STALL_MS");
}

TEST_CASE("a stall in a context destroyed right after leaves nothing behind") {
    io_context_options opts;
    opts.stall_ms = 1;
    for (int i = 0; i < 20; ++i) {
        io_context ctx(opts);
        capture_stderr err;
        sync_wait(ctx, []() -> task<void> {
            spin_for(3ms);
            co_return;
        }());
    }
}

namespace {

struct dump_lines {
    int waiter = 0; // where the spawned waiter awaits the event
    int inner = 0;  // where the nested task awaits the event
    int outer = 0;  // where outer awaits inner
};

task<void> waiter(event* ev, dump_lines* at) {
    at->waiter = __LINE__; result<void> r = co_await ev->wait();
    (void)r;
}

task<void> inner(event* ev, dump_lines* at) {
    at->inner = __LINE__; result<void> r = co_await ev->wait();
    (void)r;
}

task<void> outer(event* ev, dump_lines* at) {
    at->outer = __LINE__; co_await inner(ev, at);
}

task<std::string> dump_while_waiting(dump_lines* at, std::size_t* live) {
    event ev;
    task_scope scope;
    scope.spawn(waiter(&ev, at));
    scope.spawn(outer(&ev, at));
    result<void> yielded = co_await nop(); // the spawned tasks start and suspend
    (void)yielded;
    std::string dump = task_dump();
    *live = io_context::current().stats().live_tasks;
    ev.set();
    co_await scope.join();
    co_return dump;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("dump_tasks lists exactly the live tasks, where each waits and who awaits it") {
    io_context ctx;
    dump_lines at;
    std::size_t live = 0;
    std::string dump = sync_wait(ctx, dump_while_waiting(&at, &live));
    INFO(dump);
    CHECK(live == 4); // dump_while_waiting, waiter, outer, inner
    CHECK(dump.find("corio: 4 live tasks on this thread") != std::string::npos);
    CHECK(count(dump, "\ntask ") == 4);
    CHECK(count(dump, "[running]") == 1);
    CHECK(count(dump, here(at.waiter)) == 1);
    CHECK(count(dump, here(at.inner)) == 1);
    std::size_t awaited = dump.find("awaited by ");
    REQUIRE(awaited != std::string::npos);
    std::string awaited_line = dump.substr(awaited, dump.find('\n', awaited) - awaited);
    CHECK(awaited_line.find(here(at.outer) + " in ") != std::string::npos);
    CHECK(count(dump, "on corio::event::wait_op") == 2);
    // The caller is the running task; its latest co_await was the nop it resumed from.
    std::size_t running = dump.find("[running]");
    CHECK(dump.find("resumed from ", running) < dump.find("on corio::nop_op", running));
    CHECK(ctx.stats().live_tasks == 0);
    CHECK(task_dump() == "corio: 0 live tasks on this thread\n");
}
