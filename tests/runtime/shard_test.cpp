// SPDX-License-Identifier: MIT
// shard_group and on_shard(): start and stop together, calls delivered exactly once, posts in
// order, cancellation across shards, shutdown with calls in flight, an escaped exception, posts
// from a thread outside the group.
#include <corio/runtime/shard.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/when_any.hpp>
#include <corio/runtime/uring_op.hpp>
#include "tests/support/backend.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;

namespace {

shard_options with_shards(unsigned n) {
    shard_options o;
    o.count = n;
    return o;
}

// ----- exactly once -----

/// Per shard, touched only by that shard's thread: calls it served, per calling lane.
struct served {
    std::vector<std::uint64_t> from_lane;
};

struct calls_state {
    unsigned lanes = 0;                  // concurrent callers per shard
    std::uint64_t per_lane = 0;          // calls each lane makes, one after the other
    std::vector<served> by_shard;
    std::atomic<std::uint64_t> wrong_answers{0};
};

/// On the target: count the call, answer with something only the target can compute.
std::uint64_t serve(calls_state* st, unsigned lane_index, std::uint64_t seq) {
    shard* here = shard::current();
    ++st->by_shard[here->id()].from_lane[lane_index];
    return seq * 1000 + here->id();
}

task<void> calling_lane(calls_state* st, unsigned lane_index, unsigned n) {
    shard& self = *shard::current();
    for (std::uint64_t seq = 0; seq < st->per_lane; ++seq) {
        unsigned target = static_cast<unsigned>((self.id() + 1 + seq % (n - 1)) % n);
        // NOTE: the lambda is named before the co_await (g++ 12, DESIGN.md).
        auto work = [st, lane_index, seq] { return serve(st, lane_index, seq); };
        auto call = on_shard(target, std::move(work));
        std::uint64_t answer = co_await call;
        if (answer != seq * 1000 + target)
            st->wrong_answers.fetch_add(1);
    }
}

task<void> calls_main(calls_state* st, shard& s) {
    task_scope lanes;
    for (unsigned l = 0; l < st->lanes; ++l)
        lanes.spawn(s.context(), calling_lane(st, s.id() * st->lanes + l, s.count()));
    co_await lanes.join();
}

// ----- cancellation -----

struct cancel_state {
    std::atomic<bool> remote_started{false};
    std::atomic<bool> remote_saw_cancel{false};
    std::atomic<int> caller_result{0}; // 1: timed out as expected
};

task<int> remote_sleeper(cancel_state* st) {
    st->remote_started = true;
    result<void> slept = co_await sleep_for(1h);
    if (!slept && slept.error() == std::errc::operation_canceled)
        st->remote_saw_cancel = true;
    co_return 7;
}

task<int> call_sleeper(cancel_state* st) {
    auto work = [st] { return remote_sleeper(st); };
    auto call = on_shard(1, std::move(work));
    int got = co_await call;
    co_return got;
}

task<void> short_timer() {
    result<void> slept = co_await sleep_for(20ms);
    (void)slept;
}

task<void> cancel_main(cancel_state* st, shard& s) {
    if (s.id() != 0)
        co_return;
    // The call loses the race against a short timer: when_any cancels it, and it must still
    // resume (with the remote task's own answer) only after shard 1 is done with it.
    auto race = when_any(call_sleeper(st), short_timer());
    auto raced = co_await race;
    st->caller_result = raced.index == 1 ? 1 : -1;
}

// ----- shutdown with calls in flight -----

task<void> busy_lane(std::atomic<std::uint64_t>* done) {
    shard& self = *shard::current();
    stop_token stop = self.stop_token();
    unsigned target = (self.id() + 1) % self.count();
    while (!stop.stop_requested()) {
        auto call = on_shard(target, [] { return 1; });
        int one = co_await call;
        done->fetch_add(static_cast<std::uint64_t>(one));
    }
}

task<void> busy_main(std::atomic<std::uint64_t>* done, shard& s) {
    task_scope lanes;
    for (int i = 0; i < 16; ++i)
        lanes.spawn(s.context(), busy_lane(done));
    co_await lanes.join();
}

std::atomic<int> g_stopped_by_the_exception{0};

task<void> throwing_main(shard& s) {
    if (s.id() == 1)
        throw std::runtime_error("shard 1 gives up");
    // The others wait for the group's stop, which the exception requests.
    result<void> slept = co_await sleep_for(1h);
    if (!slept && slept.error() == std::errc::operation_canceled)
        g_stopped_by_the_exception.fetch_add(1);
}

struct roll_call {
    unsigned n = 0;
    std::vector<std::atomic<int>> seen;
    std::atomic<bool> wrong{false};
    explicit roll_call(unsigned count) : n(count), seen(count) {}
};

task<void> roll_call_main(roll_call* rc, shard& s) {
    if (shard::current() != &s || s.count() != rc->n || &io_context::current() != &s.context())
        rc->wrong = true;
    rc->seen[s.id()].fetch_add(1);
    co_return;
}

struct posts_state {
    static constexpr std::uint64_t k_posts = 100'000;
    shard_group* group = nullptr;
    std::uint64_t next = 0; // shard 1's, in order
    std::atomic<bool> out_of_order{false};
    std::atomic<bool> refused{false};
    std::atomic<std::uint64_t> ran{0};
    std::thread outsider;
};

void outsider_posts(posts_state* st) {
    for (std::uint64_t i = 0; i < posts_state::k_posts; ++i) {
        bool accepted = st->group->post(1, [st, i] {
            if (i != st->next)
                st->out_of_order = true;
            st->next = i + 1;
            st->ran.fetch_add(1);
        });
        if (!accepted)
            st->refused = true;
    }
}

task<void> posts_main(posts_state* st, shard& s) {
    if (s.id() == 0) {
        st->outsider = std::thread(outsider_posts, st);
        co_return;
    }
    while (st->ran.load() < posts_state::k_posts) {
        result<void> y = co_await sleep_for(1ms);
        if (!y)
            co_return;
    }
}

// ----- a busy shard -----

/// Resumes the awaiting coroutine on the next turn without the kernel: a loop that awaits it
/// over and over always has work, so it never sleeps.
struct yield_to_loop {
    detail::ready_node m_node;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        m_node.m_waiter = h;
        io_context::current().post(&m_node);
    }
    void await_resume() const noexcept {}
};

struct busy_target_state {
    static constexpr std::uint64_t k_calls = 20'000;
    std::atomic<bool> calls_done{false};
    std::atomic<std::uint64_t> answered{0};
    std::uint64_t served = 0; // shard 1's
};

task<void> busy_caller_lane(busy_target_state* st, std::uint64_t calls) {
    for (std::uint64_t i = 0; i < calls; ++i) {
        auto work = [st] { return ++st->served; };
        auto call = on_shard(1, std::move(work));
        std::uint64_t n = co_await call;
        if (n > 0)
            st->answered.fetch_add(1);
    }
}

task<void> busy_target_main(busy_target_state* st, shard& s) {
    if (s.id() == 1) {
        while (!st->calls_done.load())
            co_await yield_to_loop{};
        co_return;
    }
    task_scope lanes;
    for (int i = 0; i < 8; ++i)
        lanes.spawn(s.context(), busy_caller_lane(st, busy_target_state::k_calls / 8));
    co_await lanes.join();
    st->calls_done = true;
}

// ----- idle polling does not delay the loop's own work -----

struct spin_state {
    std::atomic<int> pipe_reads{0};
    std::atomic<bool> timer_fired{false};
    int fds[2] = {-1, -1}; // a pipe: shard 1 writes, shard 0 reads through its ring
};

/// Shard 0 (polling for 10 s when idle) reads 50 bytes one by one from a pipe that shard 1
/// writes with plain write(2) after each read is armed, then sleeps 1 ms. Each read completes
/// through the ring's deferred task work, which the spin must notice; the timer ends a spin too.
task<void> spin_main(spin_state* st, shard& s) {
    if (s.id() == 1) {
        for (int i = 0; i < 50; ++i) {
            while (st->pipe_reads.load() < i)
                std::this_thread::yield();
            char byte = 'x';
            REQUIRE(::write(st->fds[1], &byte, 1) == 1);
        }
        co_return;
    }
    for (int i = 0; i < 50; ++i) {
        char byte = 0;
        auto prep = [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, st->fds[0], &byte, 1, 0); };
        auto reading = submit(prep);
        result<uring_completion> got = co_await reading;
        REQUIRE(got.has_value());
        st->pipe_reads.fetch_add(1);
    }
    result<void> slept = co_await sleep_for(1ms);
    st->timer_fired = slept.has_value();
}

} // namespace

TEST_CASE("a shard group runs main once on every shard, each knowing its id and the count") {
    for (unsigned n : {1u, 2u, 4u}) {
        CAPTURE(n);
        shard_group group(with_shards(n));
        CHECK(group.size() == n);
        roll_call rc(n);
        group.run([&rc](shard& s) { return roll_call_main(&rc, s); });
        for (auto& c : rc.seen)
            CHECK(c.load() == 1);
        CHECK_FALSE(rc.wrong.load());
    }
}

TEST_CASE("1,000,000 cross-shard calls among 2 and among 4 shards: each served exactly once and "
          "answered by its target") {
    for (unsigned n : {2u, 4u}) {
        CAPTURE(n);
        calls_state st;
        st.lanes = 25; // 1,000,000 divides by 2 x 25 and by 4 x 25
        st.per_lane = 1'000'000 / (n * st.lanes);
        st.by_shard.resize(n);
        for (served& s : st.by_shard)
            s.from_lane.assign(n * st.lanes, 0);
        shard_group group(with_shards(n));
        group.run([&st](shard& s) { return calls_main(&st, s); });
        CHECK(st.wrong_answers.load() == 0);
        std::uint64_t total = 0;
        for (unsigned lane_index = 0; lane_index < n * st.lanes; ++lane_index) {
            std::uint64_t per_lane = 0;
            for (served& s : st.by_shard)
                per_lane += s.from_lane[lane_index];
            CHECK(per_lane == st.per_lane); // none lost, none twice
            total += per_lane;
        }
        CHECK(total == n * st.lanes * st.per_lane);
        MESSAGE(n, " shards: ", total, " calls; ring-to-ring wake-ups: ", group.uses_msg_ring());
    }
}

TEST_CASE("with idle polling (shard_options::idle_poll) 200,000 cross-shard calls among 2 and "
          "among 3 shards are each served exactly once") {
    for (unsigned n : {2u, 3u}) {
        CAPTURE(n);
        calls_state st;
        st.lanes = 10;
        st.per_lane = 200'000 / (n * st.lanes) + 1;
        st.by_shard.resize(n);
        for (served& s : st.by_shard)
            s.from_lane.assign(n * st.lanes, 0);
        shard_options options = with_shards(n);
        options.idle_poll = 20us;
        shard_group group(options);
        group.run([&st](shard& s) { return calls_main(&st, s); });
        CHECK(st.wrong_answers.load() == 0);
        for (unsigned lane_index = 0; lane_index < n * st.lanes; ++lane_index) {
            std::uint64_t per_lane = 0;
            for (served& s : st.by_shard)
                per_lane += s.from_lane[lane_index];
            CHECK(per_lane == st.per_lane);
        }
    }
}

TEST_CASE("a shard polling its inbox (idle_poll 10 s) still takes its own ring's completions and "
          "fires its timers without waiting for the spin to end") {
    spin_state st;
    REQUIRE(::pipe(st.fds) == 0);
    shard_options options = with_shards(2);
    options.idle_poll = 10s;
    shard_group group(options);
    auto start = std::chrono::steady_clock::now();
    group.run([&st](shard& s) { return spin_main(&st, s); });
    auto took = std::chrono::steady_clock::now() - start;
    ::close(st.fds[0]);
    ::close(st.fds[1]);
    CHECK(st.pipe_reads.load() == 50);
    CHECK(st.timer_fired.load());
    // A liveness bound, not a speed test: a spin that missed a completion would wait 10 s for
    // each of the 51 events.
    CHECK(took < 9s);
}

TEST_CASE("a shard that never sleeps takes its messages every turn: calls to it need no wake-up "
          "(regression: every batch of calls to a busy shard sent one)") {
    busy_target_state st;
    shard_group group(with_shards(2));
    group.run([&st](shard& s) { return busy_target_main(&st, s); });
    CHECK(st.answered.load() == busy_target_state::k_calls);
    CHECK(st.served == busy_target_state::k_calls);
    // Shard 1 only sleeps before its main starts and after it ends; the replies to shard 0,
    // which does sleep between batches, do wake it.
    MESSAGE("wake-ups: shard 0 ", group.at(0).wakeups(), ", shard 1 ", group.at(1).wakeups());
    CHECK(group.at(1).wakeups() <= 4);
    CHECK(group.at(0).wakeups() > 0);
}

TEST_CASE("posts from a thread outside the group run on their shard, in the order posted") {
    posts_state st;
    shard_group group(with_shards(2));
    st.group = &group;
    group.run([&st](shard& s) { return posts_main(&st, s); });
    st.outsider.join();
    CHECK_FALSE(st.refused.load());
    CHECK(st.ran.load() == posts_state::k_posts);
    CHECK_FALSE(st.out_of_order.load());
}

TEST_CASE("cancelling a cross-shard call cancels the remote work, and the caller resumes once "
          "the remote shard is done with it") {
    cancel_state st;
    shard_group group(with_shards(2));
    group.run([&st](shard& s) { return cancel_main(&st, s); });
    CHECK(st.remote_started.load());
    CHECK(st.remote_saw_cancel.load());
    CHECK(st.caller_result.load() == 1);
}

TEST_CASE("request_stop with calls in flight: every shard's main ends and the group stops") {
    std::atomic<std::uint64_t> done{0};
    shard_group group(with_shards(4));
    std::thread stopper([&] {
        while (done.load() < 20'000)
            std::this_thread::yield();
        group.request_stop();
    });
    group.run([&done](shard& s) { return busy_main(&done, s); });
    stopper.join();
    CHECK(done.load() >= 20'000);
}

TEST_CASE("an exception that escapes a shard's main stops the group and comes out of run()") {
    shard_group group(with_shards(3));
    g_stopped_by_the_exception = 0;
    CHECK_THROWS_WITH_AS(group.run(throwing_main), "shard 1 gives up", std::runtime_error);
    CHECK(g_stopped_by_the_exception.load() == 2);
}

TEST_CASE("on io_uring the shards wake each other ring to ring" *
          doctest::skip(test::not_on_io_uring())) {
    shard_group group(with_shards(2));
    CHECK(group.uses_msg_ring()); // Linux 6.3+: this machine's kernel
}

TEST_CASE("on the epoll backend the shards wake each other through eventfds (regression: "
          "uses_msg_ring() reported the kernel's support whatever the loops ran on)") {
    shard_options options = with_shards(2);
    options.context.backend = backend_kind::epoll;
    shard_group group(options);
    CHECK_FALSE(group.uses_msg_ring());
    cancel_state st; // the same cross-shard traffic as the cancellation case, on eventfds
    group.run([&st](shard& s) { return cancel_main(&st, s); });
    CHECK(st.remote_saw_cancel.load());
}

TEST_CASE("post() is refused before run() and after it, and names a shard that exists") {
    shard_group group(with_shards(2));
    int ran = 0;
    CHECK_FALSE(group.post(0, [&ran] { ++ran; })); // no loop yet: it would never run
    CHECK_THROWS_AS(static_cast<void>(group.post(2, [] {})), std::out_of_range);
    roll_call rc(2);
    group.run([&rc](shard& s) { return roll_call_main(&rc, s); });
    CHECK_FALSE(group.post(1, [&ran] { ++ran; })); // the loops are gone
    CHECK(ran == 0);
}
