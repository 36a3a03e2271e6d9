// SPDX-License-Identifier: MIT
// The append-only file: replay of what the engine logs, a truncated tail, a corrupt middle, and
// a rewrite while commands keep coming that replays to the same keyspace.
#include "aof.hpp"

#include "kv_support.hpp"
#include "tests/fs/temp_dir.hpp"

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

namespace fs = std::filesystem;
using kv::test::bulk;
using kv::test::fixture;

namespace {

/// The live keyspace as key -> "value@expire_at".
std::map<std::string, std::string> dump(const kv::store& s) {
    std::map<std::string, std::string> out;
    for (const kv::store::node& n : s.nodes())
        if (!s.is_expired(n))
            out[n.first] = n.second.value + "@" + std::to_string(n.second.expire_at);
    return out;
}


} // namespace

TEST_CASE("replaying the log rebuilds the keyspace the commands built") {
    fixture live(true);
    live.run({"SET", "a", "1"});
    live.run({"SET", "b", std::string_view("x\0\r\ny", 5), "EX", "100"});
    live.run({"INCRBY", "n", "5"});
    live.run({"MSET", "c", "3", "d", "4"});
    live.run({"DEL", "c"});
    live.run({"PEXPIRE", "d", "5000"});
    live.run({"APPEND", "a", "23"});

    fixture replayed;
    replayed.now_ms = live.now_ms + 1000; // replayed later: deadlines stay absolute
    kv::replay_report r = kv::replay_log(live.log, replayed.eng);
    CHECK(r.ok);
    CHECK(r.records == 7);
    CHECK(r.truncated_bytes == 0);
    CHECK(r.good_length == live.log.size());
    CHECK(dump(replayed.keyspace) == dump(live.keyspace));
    CHECK(replayed.run({"TTL", "b"}) == ":99\r\n");
}

TEST_CASE("replay does not expire keys half-way, so a later INCR replays as it ran") {
    fixture live(true);
    live.run({"SET", "n", "5", "PX", "100"});
    live.run({"INCR", "n"}); // ran before the deadline: 6, TTL kept
    fixture replayed;
    replayed.now_ms = live.now_ms + 1000; // the key has expired by now
    kv::replay_report r = kv::replay_log(live.log, replayed.eng);
    CHECK(r.ok);
    // After loading the key is expired, as it is on the live server at that time: not 1.
    CHECK(replayed.run({"GET", "n"}) == "$-1\r\n");
}

TEST_CASE("a truncated last record is reported with the length to keep") {
    fixture live(true);
    live.run({"SET", "a", "1"});
    live.run({"SET", "b", "2"});
    std::size_t complete = live.log.size();
    live.run({"SET", "c", "3"});
    for (std::size_t cut = complete + 1; cut < live.log.size(); ++cut) {
        INFO("cut at " << cut);
        fixture replayed;
        kv::replay_report r = kv::replay_log(std::string_view(live.log).substr(0, cut), replayed.eng);
        CHECK(r.ok);
        CHECK(r.records == 2);
        CHECK(r.good_length == complete);
        CHECK(r.truncated_bytes == cut - complete);
        CHECK(replayed.keyspace.size() == 2);
    }
}

TEST_CASE("a corrupt record in the middle is an error, not a truncation") {
    fixture live(true);
    live.run({"SET", "a", "1"});
    std::string log = live.log + "*2\r\n$3\r\nSET\r\nXX\r\n" + live.log;
    fixture replayed;
    kv::replay_report r = kv::replay_log(log, replayed.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("at offset 27") != std::string::npos);

    fixture garbage;
    r = kv::replay_log(live.log + "hello\r\n" + live.log, garbage.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("must start with '*'") != std::string::npos);

    fixture unknown;
    r = kv::replay_log("*1\r\n$5\r\nBOGUS\r\n", unknown.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("unknown command 'BOGUS'") != std::string::npos);
}

TEST_CASE("a snapshot replays to the same keyspace") {
    fixture live;
    live.run({"MSET", "a", "1", "b", "2"});
    live.run({"SET", "c", "3", "PX", "5000"});
    live.run({"SET", "gone", "x", "PX", "1"});
    live.now_ms += 1;
    std::string snap;
    kv::snapshot_records(live.keyspace, snap);
    fixture replayed;
    CHECK(kv::replay_log(snap, replayed.eng).records == 3);
    CHECK(dump(replayed.keyspace) == dump(live.keyspace));
}

namespace {

/// Writes through an aof_log with `always`: SETs, a rewrite started half-way, more SETs while it
/// runs; then closes and returns the file's content.
corio::task<void> log_with_rewrite(kv::aof_log* log, fixture* f, bool* rewritten) {
    auto opening = log->open(0);
    corio::result<void> opened = co_await std::move(opening);
    REQUIRE(opened);
    for (int i = 0; i < 50; ++i)
        f->run({"SET", "k" + std::to_string(i % 5), std::to_string(i)});
    std::uint64_t seq = log->commit();
    while (!log->is_durable(seq)) {
        auto waiting = log->durable_event().wait();
        corio::result<void> woke = co_await waiting;
        REQUIRE(woke);
    }
    CHECK(log->start_rewrite().empty());
    CHECK(log->start_rewrite() == "Background append only file rewriting already in progress");
    for (int i = 0; i < 20; ++i)
        f->run({"INCR", "counter"});
    f->run({"DEL", "k0"});
    log->commit();
    while (log->stats().rewrites == 0) {
        auto waiting = log->durable_event().wait();
        corio::result<void> woke = co_await waiting;
        REQUIRE(woke);
    }
    f->run({"SET", "after", "switch"});
    seq = log->commit();
    while (!log->is_durable(seq)) {
        auto waiting = log->durable_event().wait();
        corio::result<void> woke = co_await waiting;
        REQUIRE(woke);
    }
    *rewritten = true;
    co_await log->close();
}

} // namespace

TEST_CASE("a rewrite while commands keep coming produces a log that replays to the same keyspace") {
    corio::test::temp_dir dir;
    fixture live;
    kv::aof_options opts;
    opts.path = dir / "appendonly.aof";
    opts.fsync = kv::fsync_policy::always;
    opts.rewrite_percentage = 0; // only the explicit rewrite
    bool rewritten = false;
    {
        corio::io_context ctx;
        kv::aof_log log(opts, live.keyspace);
        live.eng.set_propagation(&log.buffer());
        corio::sync_wait(ctx, log_with_rewrite(&log, &live, &rewritten));
        live.eng.set_propagation(nullptr);
        CHECK(log.stats().rewrites == 1);
    }
    REQUIRE(rewritten);
    std::string content = corio::test::read_plain(opts.path);
    CHECK_FALSE(fs::exists(opts.path + ".rewrite"));
    fixture replayed;
    kv::replay_report r = kv::replay_log(content, replayed.eng);
    CHECK(r.ok);
    CHECK(r.truncated_bytes == 0);
    CHECK(dump(replayed.keyspace) == dump(live.keyspace));
    CHECK(replayed.run({"GET", "counter"}) == bulk("20"));
    CHECK(replayed.run({"GET", "k0"}) == "$-1\r\n");
    CHECK(replayed.run({"GET", "after"}) == bulk("switch"));
    // 50 SETs of 5 keys were compacted to one SET per key; then the 22 records of the rewrite
    // buffer and the one written after the switch.
    CHECK(r.records == 5 + 20 + 1 + 1);
}
