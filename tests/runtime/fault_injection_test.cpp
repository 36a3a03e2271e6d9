// SPDX-License-Identifier: MIT
// The fault-injection mode (io_context_options::faults, CORIO_FAULTS): its syntax, what it
// rewrites and what it leaves alone, its counter, and the loop's own answer to EINTR.
#include <corio/runtime/io_context.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include "tests/support/pipe.hpp"
#include "tests/support/faults.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

using namespace corio;
using corio::test::with_faults;
using namespace std::chrono_literals;
using corio::test::pipe_pair;

namespace {

struct outcome {
    int resumed = 0;       // times the awaiter resumed
    int res = 0;           // the completion's res, when it succeeded
    std::error_code error; // or its error
};

task<void> read_pipe(int fd, outcome* out) {
    char byte = 0;
    auto prep = [fd, &byte](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &byte, 1, -1); };
    auto read = submit(prep);
    result<uring_completion> r = co_await read;
    ++out->resumed;
    if (r)
        out->res = r->res;
    else
        out->error = r.error();
}

task<void> write_byte_later(int fd) {
    result<void> r = co_await nop(); // the reader has started by now
    r.value();
    REQUIRE(::write(fd, "x", 1) == 1);
}

task<void> read_while_written(int read_fd, int write_fd, outcome* out) {
    task_scope scope;
    scope.spawn(read_pipe(read_fd, out));
    scope.spawn(write_byte_later(write_fd));
    co_await scope.join();
}

task<void> stop_scope(task_scope* scope) {
    scope->request_stop();
    co_return;
}

task<void> stop_scope_next_turn(task_scope* scope) {
    result<void> r = co_await nop();
    r.value();
    scope->request_stop();
}

/// The read starts first; the stopper requests stop in the same turn (before the read's first
/// SQE has even been submitted) or, with `next_turn`, one turn later (after its restart).
task<void> read_then_stop(int fd, outcome* out, bool next_turn) {
    task_scope scope;
    scope.spawn(read_pipe(fd, out));
    scope.spawn(next_turn ? stop_scope_next_turn(&scope) : stop_scope(&scope));
    co_await scope.join();
}

int bytes_queued(int fd) {
    int n = -1;
    REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
    return n;
}

task<void> nops_and_timers(int n, int* ok) {
    for (int i = 0; i < n; ++i) {
        result<void> a = co_await nop();
        result<void> b = co_await sleep_for(0ms);
        *ok += (a && b) ? 1 : 0;
    }
}

/// Sets CORIO_FAULTS for its lifetime (tests in this binary run one at a time).
class scoped_environment {
public:
    explicit scoped_environment(const char* value) {
        if (const char* old = std::getenv("CORIO_FAULTS"))
            m_saved = old;
        m_had = std::getenv("CORIO_FAULTS") != nullptr;
        if (value)
            ::setenv("CORIO_FAULTS", value, 1);
        else
            ::unsetenv("CORIO_FAULTS");
    }
    ~scoped_environment() {
        if (m_had)
            ::setenv("CORIO_FAULTS", m_saved.c_str(), 1);
        else
            ::unsetenv("CORIO_FAULTS");
    }
    scoped_environment(const scoped_environment&) = delete;
    scoped_environment& operator=(const scoped_environment&) = delete;

private:
    std::string m_saved; // the value before, if any
    bool m_had = false;  // whether there was one
};

} // namespace

TEST_CASE("CORIO_FAULTS syntax: seed, rate, kinds (comma or plus separated) and errors=all") {
    fault_options a = fault_options::parse("seed=42,rate=0.05");
    CHECK(a.seed == 42);
    CHECK(a.rate == doctest::Approx(0.05));
    CHECK(a.kinds == fault_options::transient);
    CHECK(a.is_on());

    fault_options b = fault_options::parse("seed=7,rate=1,kinds=short,eintr");
    CHECK(b.kinds == (fault_options::short_counts | fault_options::interrupts));
    CHECK(b.rate == 1.0);

    fault_options c = fault_options::parse("kinds=reset+eio, seed=0x10");
    CHECK(c.kinds == fault_options::fatal);
    CHECK(c.seed == 16);
    CHECK(c.rate == doctest::Approx(0.05)); // the default

    fault_options d = fault_options::parse("seed=3,errors=all");
    CHECK(d.kinds == fault_options::all);
    CHECK(fault_options::parse("seed=3,errors=transient").kinds == fault_options::transient);
    CHECK(fault_options::parse("seed=3,kinds=eintr,errors=all").kinds ==
          (fault_options::interrupts | fault_options::fatal));

    CHECK(d.describe() == "seed=3, rate=0.05, kinds=short,eintr,enobufs,reset,eio");
    CHECK(b.describe() == "seed=7, rate=1, kinds=short,eintr");

    CHECK_FALSE(fault_options::parse("").is_on());
    CHECK_FALSE(fault_options::parse("off").is_on());
    CHECK_FALSE(fault_options::parse("0").is_on());
    CHECK_FALSE(fault_options::parse("seed=1,rate=0").is_on());
}

TEST_CASE("a malformed CORIO_FAULTS spec throws invalid_argument naming what is wrong") {
    auto message_of = [](const char* spec) -> std::string {
        try {
            (void)fault_options::parse(spec);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "no exception";
    };
    CHECK(message_of("seed=x").find("seed must be an unsigned integer") != std::string::npos);
    CHECK(message_of("rate=2").find("rate must be a number from 0 to 1") != std::string::npos);
    CHECK(message_of("kinds=short,bogus").find("unknown fault kind 'bogus'") != std::string::npos);
    CHECK(message_of("sed=1").find("unknown key 'sed'") != std::string::npos);
    CHECK(message_of("errors=some").find("errors must be transient or all") != std::string::npos);

    scoped_environment env("rate=oops");
    CHECK_THROWS_AS(io_context(), std::invalid_argument);
}

TEST_CASE("CORIO_FAULTS is read at construction; explicit options override it") {
    {
        scoped_environment env("seed=5,rate=0.5,kinds=eintr");
        io_context from_env;
        REQUIRE(from_env.faults() != nullptr);
        CHECK(from_env.faults()->seed == 5);
        CHECK(from_env.faults()->kinds == fault_options::interrupts);
        io_context off(with_faults("off"));
        CHECK(off.faults() == nullptr);
    }
    scoped_environment env(nullptr);
    io_context plain;
    CHECK(plain.faults() == nullptr);
}

TEST_CASE("the mode prints its seed to stderr once per configuration") {
    // stderr goes to a temporary file while the contexts are made.
    std::FILE* capture = std::tmpfile();
    REQUIRE(capture != nullptr);
    std::fflush(stderr);
    int saved = ::dup(STDERR_FILENO);
    REQUIRE(::dup2(::fileno(capture), STDERR_FILENO) == STDERR_FILENO);
    {
        io_context a(with_faults("seed=918273,rate=0.25,kinds=short,eintr"));
        io_context b(with_faults("seed=918273,rate=0.25,kinds=short,eintr"));
    }
    std::fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    std::rewind(capture);
    std::string text;
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, capture))
        text += buffer;
    std::fclose(capture);
    CHECK(text == "corio: fault injection on (seed=918273, rate=0.25, kinds=short,eintr)\n");
}

TEST_CASE("NOPs and timers are never faulted, even at rate 1 with every kind") {
    io_context ctx(with_faults("seed=1,rate=1,kinds=all"));
    int ok = 0;
    sync_wait(ctx, nops_and_timers(100, &ok));
    CHECK(ok == 100);
    CHECK(ctx.stats().faults_injected == 0);
}

TEST_CASE("an op that completes with EINTR is resubmitted and the waiter sees the real result") {
    pipe_pair pipe;
    io_context ctx(with_faults("seed=1,rate=1,kinds=eintr"));
    outcome out;
    sync_wait(ctx, read_while_written(pipe.read_end, pipe.write_end, &out));
    CHECK(out.resumed == 1);
    CHECK(out.error == std::error_code());
    CHECK(out.res == 1);
    CHECK(ctx.stats().faults_injected == 1); // the retry is never faulted again
    CHECK(ctx.stats().restarts == 1);
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("an op stopped before its EINTR arrives resumes exactly once with ECANCELED") {
    pipe_pair pipe;
    io_context ctx(with_faults("seed=1,rate=1,kinds=eintr"));
    outcome out;
    sync_wait(ctx, read_then_stop(pipe.read_end, &out, false));
    CHECK(out.resumed == 1);
    CHECK(out.error == std::errc::operation_canceled);
    CHECK(ctx.stats().restarts == 0); // stop was requested: not restarted
    CHECK(ctx.stats().ops_in_flight == 0);
    REQUIRE(::write(pipe.write_end, "y", 1) == 1);
    CHECK(bytes_queued(pipe.read_end) == 1); // no read is left attached to the pipe
}

TEST_CASE("cancelling an op that is being restarted resumes it exactly once with ECANCELED") {
    pipe_pair pipe;
    io_context ctx(with_faults("seed=1,rate=1,kinds=eintr"));
    outcome out;
    sync_wait(ctx, read_then_stop(pipe.read_end, &out, true));
    CHECK(out.resumed == 1);
    CHECK(out.error == std::errc::operation_canceled);
    CHECK(ctx.stats().restarts == 1); // restarted, then the restarted read was cancelled
    CHECK(ctx.stats().ops_in_flight == 0);
    REQUIRE(::write(pipe.write_end, "y", 1) == 1);
    CHECK(bytes_queued(pipe.read_end) == 1);
}
