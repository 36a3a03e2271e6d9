// SPDX-License-Identifier: MIT
#include <corio/runtime/channel.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/when_all.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/support/sync_support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

using namespace corio;
using test::move_only;
using log_t = std::vector<std::string>;
using chan = channel<move_only>;

namespace {

std::string outcome(std::error_code ec) {
    if (!ec)
        return "ok";
    if (ec == std::errc::operation_canceled)
        return "canceled";
    if (ec == std::errc::broken_pipe)
        return "broken_pipe";
    if (ec == std::errc::resource_unavailable_try_again)
        return "try_again";
    return ec.message();
}

std::string received(const result<move_only>& r) {
    return r ? std::to_string(r->value()) : outcome(r.error());
}

task<void> sender(chan* ch, log_t* log, int value) {
    move_only v(value);
    result<void> r = co_await ch->send(std::move(v));
    log->push_back(std::to_string(value) + " " + outcome(r.error()));
}

task<void> receiver(chan* ch, log_t* log, std::string name) {
    result<move_only> v = co_await ch->recv();
    log->push_back(name + " " + received(v));
}

task<int> receiver_int(chan* ch, log_t* log, std::string name) {
    result<move_only> v = co_await ch->recv();
    log->push_back(name + " " + received(v));
    co_return 0;
}

task<int> after_yield() {
    co_await test::yield();
    co_return 7;
}

void must_send(chan& ch, int value) {
    move_only v(value);
    result<void> r = ch.try_send(std::move(v));
    REQUIRE(r);
}

// ----- backpressure and handoff -----

task<void> produce_three(chan* ch, log_t* log) {
    for (int i = 1; i <= 3; ++i) {
        log->push_back("send " + std::to_string(i));
        move_only v(i);
        result<void> r = co_await ch->send(std::move(v));
        log->push_back("sent " + std::to_string(i) + " " + outcome(r.error()) + " size " +
                       std::to_string(ch->size()));
    }
}

task<void> consume_three(chan* ch, log_t* log) {
    for (int i = 1; i <= 3; ++i) {
        result<move_only> v = co_await ch->recv();
        log->push_back("recv " + received(v) + " size " + std::to_string(ch->size()));
    }
}

task<void> full_channel(log_t* log) {
    chan ch(2);
    auto both = when_all(produce_three(&ch, log), consume_three(&ch, log));
    co_await both;
}

task<void> receive_one(chan* ch, log_t* log) {
    log->push_back("recv");
    result<move_only> v = co_await ch->recv();
    log->push_back("got " + received(v));
}

task<void> send_one(chan* ch, log_t* log) {
    log->push_back("send 7");
    move_only v(7);
    result<void> r = co_await ch->send(std::move(v));
    log->push_back("sent 7 " + outcome(r.error()) + " size " + std::to_string(ch->size()));
}

task<void> waiting_receiver(log_t* log) {
    chan ch(4);
    auto both = when_all(receive_one(&ch, log), send_one(&ch, log));
    co_await both;
}

// ----- a long stream -----

struct stream_report {
    std::vector<int> values; // what the consumer received, in order
    std::string end;         // how the stream ended
    std::size_t peak = 0;    // the largest size() the consumer saw
};

task<void> produce_n(chan* ch, int n) {
    for (int i = 0; i < n; ++i) {
        move_only v(i);
        result<void> r = co_await ch->send(std::move(v));
        r.value();
    }
    ch->close();
}

task<void> consume_all(chan* ch, stream_report* report) {
    for (;;) {
        result<move_only> v = co_await ch->recv();
        if (!v) {
            report->end = outcome(v.error());
            co_return;
        }
        report->values.push_back(v->value());
        report->peak = std::max(report->peak, ch->size());
    }
}

task<void> stream(int n, std::size_t capacity, stream_report* report) {
    chan ch(capacity);
    auto both = when_all(produce_n(&ch, n), consume_all(&ch, report));
    co_await both;
}

// ----- close -----

task<void> close_with_receivers(log_t* log) {
    chan ch(4);
    must_send(ch, 10);
    must_send(ch, 20);
    task_scope scope;
    for (int i = 1; i <= 4; ++i)
        scope.spawn(receiver(&ch, log, "r" + std::to_string(i)));
    co_await test::yield();
    log->push_back("close");
    ch.close();
    co_await scope.join();
    move_only late(99);
    result<void> r = co_await ch.send(std::move(late));
    log->push_back("send after close " + outcome(r.error()));
}

task<void> buffered_then_closed(log_t* log) {
    chan ch(4);
    must_send(ch, 30);
    must_send(ch, 40);
    ch.close();
    for (int i = 0; i < 3; ++i) {
        result<move_only> v = co_await ch.recv();
        log->push_back(received(v));
    }
    log->push_back("try_recv " + received(ch.try_recv()));
}

task<void> close_with_senders(log_t* log) {
    chan ch(1);
    must_send(ch, 1);
    task_scope scope;
    scope.spawn(sender(&ch, log, 2));
    scope.spawn(sender(&ch, log, 3));
    co_await test::yield();
    log->push_back("close");
    ch.close();
    co_await scope.join();
    log->push_back("alive " + std::to_string(move_only::alive));
    result<move_only> a = co_await ch.recv();
    result<move_only> b = co_await ch.recv();
    log->push_back(received(a) + " " + received(b));
}

// ----- cancellation -----

task<void> cancel_middle_sender(log_t* log) {
    chan ch(1);
    must_send(ch, 1);
    task_scope outer;
    task_scope inner;
    outer.spawn(sender(&ch, log, 2));
    inner.spawn(sender(&ch, log, 3));
    outer.spawn(sender(&ch, log, 4));
    co_await test::yield();
    inner.request_stop();
    co_await inner.join();
    for (int i = 0; i < 3; ++i) {
        result<move_only> v = co_await ch.recv();
        log->push_back("recv " + received(v));
    }
    log->push_back("try_recv " + received(ch.try_recv()));
    co_await outer.join();
}

task<void> lose_race(log_t* log) {
    chan ch(4);
    auto race = when_any(receiver_int(&ch, log, "r"), after_yield());
    auto winner = co_await race;
    log->push_back("winner " + std::to_string(winner.index));
    must_send(ch, 5); // buffered: the cancelled receiver is gone
    log->push_back("size " + std::to_string(ch.size()));
    log->push_back("try_recv " + received(ch.try_recv()));
}

// ----- rendezvous -----

task<void> rendezvous_sender(chan* ch, log_t* log) {
    for (int i = 1; i <= 2; ++i) {
        log->push_back("send " + std::to_string(i));
        move_only v(i);
        result<void> r = co_await ch->send(std::move(v));
        log->push_back("sent " + std::to_string(i) + " " + outcome(r.error()));
    }
}

task<void> rendezvous_receiver(chan* ch, log_t* log) {
    for (int i = 1; i <= 2; ++i) {
        result<move_only> v = co_await ch->recv();
        log->push_back("recv " + received(v) + " size " + std::to_string(ch->size()));
    }
}

task<void> rendezvous(log_t* log) {
    chan ch(0);
    move_only v(0);
    log->push_back("try_send " + outcome(ch.try_send(std::move(v)).error()));
    auto both = when_all(rendezvous_sender(&ch, log), rendezvous_receiver(&ch, log));
    co_await both;
}

// ----- destroyed frames -----

test::probe send_in_probe(chan* ch, int value) {
    move_only v(value);
    [[maybe_unused]] result<void> r = co_await ch->send(std::move(v));
}

test::probe recv_in_probe(chan* ch, bool* resumed) {
    [[maybe_unused]] result<move_only> r = co_await ch->recv();
    *resumed = true;
}

} // namespace

TEST_CASE("channel send waits while full and resumes when a receiver makes room") {
    log_t log;
    sync_wait(full_channel(&log));
    CHECK(log == log_t{"send 1", "sent 1 ok size 1", "send 2", "sent 2 ok size 2", "send 3",
                       "recv 1 size 2", "recv 2 size 1", "recv 3 size 0", "sent 3 ok size 0"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("a send to a waiting receiver hands the value over without buffering it") {
    log_t log;
    sync_wait(waiting_receiver(&log));
    CHECK(log == log_t{"recv", "send 7", "sent 7 ok size 0", "got 7"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("channel preserves FIFO order of 10000 move-only values between a producer and a "
          "consumer with capacity 4") {
    stream_report report;
    sync_wait(stream(10000, 4, &report));
    std::vector<int> expected;
    for (int i = 0; i < 10000; ++i)
        expected.push_back(i);
    CHECK(report.values == expected);
    CHECK(report.end == "broken_pipe");
    CHECK(report.peak == 4);
    CHECK(move_only::alive == 0);
}

TEST_CASE("close wakes blocked receivers with broken_pipe after the buffered values") {
    log_t log;
    sync_wait(close_with_receivers(&log));
    CHECK(log == log_t{"r1 10", "r2 20", "close", "r3 broken_pipe", "r4 broken_pipe",
                       "send after close broken_pipe"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("values buffered before close are still received, then broken_pipe") {
    log_t log;
    sync_wait(buffered_then_closed(&log));
    CHECK(log == log_t{"30", "40", "broken_pipe", "try_recv broken_pipe"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("close wakes blocked senders with broken_pipe and does not enqueue their values") {
    log_t log;
    sync_wait(close_with_senders(&log));
    CHECK(log == log_t{"close", "2 broken_pipe", "3 broken_pipe", "alive 1", "1 broken_pipe"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("a cancelled send resumes with operation_canceled and its value is not enqueued") {
    log_t log;
    sync_wait(cancel_middle_sender(&log));
    CHECK(log ==
          log_t{"3 canceled", "recv 1", "recv 2", "recv 4", "try_recv try_again", "2 ok", "4 ok"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("when_any cancels a losing receive and it takes no value") {
    log_t log;
    sync_wait(lose_race(&log));
    CHECK(log == log_t{"r canceled", "winner 1", "size 1", "try_recv 5"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("try_send and try_recv report full, empty and closed without waiting") {
    {
        chan ch(2);
        CHECK(ch.capacity() == 2);
        CHECK(received(ch.try_recv()) == "try_again");
        must_send(ch, 1);
        must_send(ch, 2);
        move_only third(3);
        CHECK(outcome(ch.try_send(std::move(third)).error()) == "try_again");
        CHECK(third.value() == 3); // not moved from: the send failed
        CHECK(ch.size() == 2);
        ch.close();
        CHECK(ch.is_closed());
        CHECK(outcome(ch.try_send(std::move(third)).error()) == "broken_pipe");
        CHECK(third.value() == 3);
        CHECK(received(ch.try_recv()) == "1");
        CHECK(received(ch.try_recv()) == "2");
        CHECK(received(ch.try_recv()) == "broken_pipe");
        CHECK(ch.size() == 0);
    }
    CHECK(move_only::alive == 0);
}

TEST_CASE("destroying a channel destroys the values still buffered") {
    {
        chan ch(3);
        for (int round = 0; round < 5; ++round) { // wraps the ring around
            must_send(ch, round);
            must_send(ch, round + 100);
            CHECK(received(ch.try_recv()) == std::to_string(round));
            CHECK(received(ch.try_recv()) == std::to_string(round + 100));
        }
        must_send(ch, 1);
        must_send(ch, 2);
        CHECK(move_only::alive == 2);
    }
    CHECK(move_only::alive == 0);
}

TEST_CASE("a rendezvous channel of capacity 0 passes each value from sender to receiver") {
    log_t log;
    sync_wait(rendezvous(&log));
    CHECK(log == log_t{"try_send try_again", "send 1", "recv 1 size 0", "sent 1 ok", "send 2",
                       "sent 2 ok", "recv 2 size 0"});
    CHECK(move_only::alive == 0);
}

TEST_CASE("a send whose frame is destroyed while waiting unlinks itself and drops its value") {
    {
        io_context ctx;
        chan ch(1);
        stop_source stop;
        must_send(ch, 1);
        {
            test::probe p = send_in_probe(&ch, 2);
            p.start(stop.token());
            CHECK_FALSE(p.done());
            CHECK(move_only::alive == 3); // buffered, moved-from local, held by the awaiter
        }
        CHECK(move_only::alive == 1);
        stop.request_stop();
        CHECK(received(ch.try_recv()) == "1");
        CHECK(received(ch.try_recv()) == "try_again"); // no refill from the destroyed sender
        ctx.run();
    }
    CHECK(move_only::alive == 0);
}

TEST_CASE("a receive whose frame is destroyed while waiting unlinks itself") {
    {
        io_context ctx;
        chan ch(1);
        stop_source stop;
        bool resumed = false;
        {
            test::probe p = recv_in_probe(&ch, &resumed);
            p.start(stop.token());
            CHECK_FALSE(p.done());
        }
        stop.request_stop();
        must_send(ch, 3);
        CHECK(ch.size() == 1); // buffered, not handed to the destroyed receiver
        CHECK(received(ch.try_recv()) == "3");
        ctx.run();
        CHECK_FALSE(resumed);
    }
    CHECK(move_only::alive == 0);
}
