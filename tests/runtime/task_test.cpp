// SPDX-License-Identifier: MIT
#include <corio/runtime/task.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/uring_op.hpp>
#include "tests/support/counted.hpp"

#include <doctest/doctest.h>
#include <pthread.h>

#include <stdexcept>
#include <string>
#include <vector>

using namespace corio;
using corio::test::counted;

namespace {

task<void> set_flag(bool* flag) {
    *flag = true;
    co_return;
}

task<int> answer() { co_return 42; }

task<int> answer_plus_one() {
    int v = co_await answer();
    co_return v + 1;
}

task<int> value_after_nop(int v) {
    result<void> r = co_await nop();
    r.value();
    co_return v;
}

task<int> throw_now() {
    throw std::runtime_error("thrown synchronously");
    co_return 0;
}

task<int> throw_after_nop() {
    result<void> r = co_await nop();
    r.value();
    throw std::runtime_error("thrown after a suspension");
}

task<std::string> catch_message(bool async) {
    try {
        if (async) {
            int v = co_await throw_after_nop();
            co_return std::to_string(v);
        }
        int v = co_await throw_now();
        co_return std::to_string(v);
    } catch (const std::runtime_error& e) {
        co_return e.what();
    }
}

task<counted> make_counted(int v) {
    counted local(v);
    result<void> r = co_await nop();
    r.value();
    co_return local;
}

task<int> use_counted(counted param) {
    counted c = co_await make_counted(param.value + 1);
    co_return c.value;
}

task<int> one() { co_return 1; }

task<long> sum_of_ones(long n) {
    long sum = 0;
    for (long i = 0; i < n; ++i) {
        int v = co_await one();
        sum += v;
    }
    co_return sum;
}

task<int> nested(int depth) {
    if (depth == 0) {
        int v = co_await value_after_nop(0);
        co_return v;
    }
    int below = co_await nested(depth - 1);
    co_return below + 1;
}

/// Runs `fn` on a thread whose whole stack is `bytes` long.
template <class F>
void run_on_small_stack(std::size_t bytes, F fn) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, bytes);
    pthread_t thread;
    auto trampoline = [](void* arg) -> void* {
        (*static_cast<F*>(arg))();
        return nullptr;
    };
    REQUIRE(pthread_create(&thread, &attr, trampoline, &fn) == 0);
    pthread_join(thread, nullptr);
    pthread_attr_destroy(&attr);
}

} // namespace

TEST_CASE("a task does not start until it is awaited") {
    bool started = false;
    task<void> t = set_flag(&started);
    CHECK_FALSE(started);
    sync_wait(std::move(t));
    CHECK(started);
}

TEST_CASE("a task returns its value through nested awaits") { CHECK(sync_wait(answer_plus_one()) == 43); }

TEST_CASE("a task resumed by the loop after a nop returns its value") {
    CHECK(sync_wait(value_after_nop(7)) == 7);
}

TEST_CASE("an exception thrown before the first suspension reaches the awaiter") {
    CHECK(sync_wait(catch_message(false)) == "thrown synchronously");
}

TEST_CASE("an exception thrown after a suspension reaches the awaiter") {
    CHECK(sync_wait(catch_message(true)) == "thrown after a suspension");
}

TEST_CASE("sync_wait rethrows the task's exception") {
    CHECK_THROWS_WITH_AS(sync_wait(throw_after_nop()), "thrown after a suspension",
                         std::runtime_error);
}

TEST_CASE("every value and frame constructed is destroyed") {
    counted::reset();
    std::size_t frames_before = detail::t_live_tasks;
    CHECK(sync_wait(use_counted(counted(1))) == 2);
    {
        task<int> never_awaited = use_counted(counted(5)); // destroyed unstarted
        CHECK(detail::t_live_tasks == frames_before + 1);
    }
    CHECK(counted::constructed > 0);
    CHECK(counted::alive() == 0);
    CHECK(detail::t_live_tasks == frames_before);
}

TEST_CASE("the frame byte counters see each frame's size while it lives, and keep the peak") {
    io_context ctx;
    std::size_t before = ctx.stats().frame_bytes;
    std::size_t one = 0;
    {
        // In a vector, the tasks outlive this scope as far as the compiler can tell: clang at -O1
        // and above elides the allocation of a frame that provably dies in its creator's scope
        // (HALO), and then no frame bytes exist to count.
        std::vector<task<int>> tasks;
        tasks.reserve(2);
        tasks.push_back(use_counted(counted(1)));
        one = ctx.stats().frame_bytes - before;
        CHECK(one >= sizeof(void*) * 2); // resume and destroy pointers at least
        tasks.push_back(use_counted(counted(2)));
        CHECK(ctx.stats().frame_bytes == before + 2 * one);
        CHECK(ctx.stats().peak_frame_bytes >= before + 2 * one);
    }
    CHECK(ctx.stats().frame_bytes == before);
    CHECK(ctx.stats().peak_frame_bytes >= before + 2 * one);
}

TEST_CASE("a moved-from task is empty and the moved-to task runs") {
    task<int> a = answer();
    task<int> b = std::move(a);
    CHECK_FALSE(a.valid());
    REQUIRE(b.valid());
    CHECK(sync_wait(std::move(b)) == 42);
}

TEST_CASE("a million synchronously completing awaits run on a 1 MiB stack") {
    // Symmetric transfer is not a tail call at -O0 or under ASan: without the synchronous
    // completion path each await would leave a frame on the stack and this would overflow.
    long sum = 0;
    run_on_small_stack(1 << 20, [&sum] {
        io_context ctx;
        sum = sync_wait(ctx, sum_of_ones(1'000'000));
    });
    CHECK(sum == 1'000'000);
}

TEST_CASE("a chain of 1000 nested tasks resumes through every level after a real suspension") {
    CHECK(sync_wait(nested(1000)) == 1000);
}

TEST_CASE("a freed task frame is reused for the next frame of its size class") {
    void* first = detail::frame_allocator::allocate(200);
    detail::frame_allocator::deallocate(first, 200);
    void* second = detail::frame_allocator::allocate(240); // same 64-byte class: 193..256 bytes
    void* other = detail::frame_allocator::allocate(240);
#if CORIO_FRAME_POOL
    CHECK(second == first);
#endif
    CHECK(other != second);
    detail::frame_allocator::deallocate(second, 240);
    detail::frame_allocator::deallocate(other, 240);
    void* large = detail::frame_allocator::allocate(5000); // beyond the pooled classes
    CHECK(large != nullptr);
    detail::frame_allocator::deallocate(large, 5000);
}
