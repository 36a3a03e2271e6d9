// SPDX-License-Identifier: MIT
// The append-only file: replay of what the engine logs, a truncated tail, a corrupt middle, and
// a rewrite while commands keep coming that replays to the same keyspace.
#include "aof.hpp"

#include "kv_support.hpp"
#include "tests/fs/temp_dir.hpp"

#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

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
        kv::replay_report r =
            kv::replay_log(std::string_view(live.log).substr(0, cut), replayed.eng);
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
    CHECK(r.error == "corrupt record at byte 27: at byte 40, expected '$' (the bulk header of "
                     "argument 2 of 2), found 'X'");

    fixture garbage;
    r = kv::replay_log(live.log + "hello\r\n" + live.log, garbage.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.error == "corrupt record at byte 27: expected '*', found 'h'");

    fixture unknown;
    r = kv::replay_log("*1\r\n$5\r\nBOGUS\r\n", unknown.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("unknown command 'BOGUS'") != std::string::npos);
}

namespace {

/// One AOF record, as the writer encodes it.
std::string record(std::initializer_list<std::string_view> args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (std::string_view a : args)
        out.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
    return out;
}

/// `n` records `SET key:i vi`, and the offset where each starts.
std::string set_log(int n, std::vector<std::size_t>* starts = nullptr) {
    std::string log;
    for (int i = 0; i < n; ++i) {
        if (starts)
            starts->push_back(log.size());
        log += record({"SET", "key:" + std::to_string(i), "v" + std::to_string(i)});
    }
    return log;
}

} // namespace

TEST_CASE("a length corrupted to point past every later record is refused at its record, not "
          "cut as a truncated tail (issue 10 defect 4: 4,950 of 5,050 keys were dropped)") {
    std::vector<std::size_t> starts;
    std::string log = set_log(5050, &starts);
    REQUIRE(starts[100] == 3380);
    std::size_t at = log.find("$4\r\nv100\r\n", starts[100]);
    log.replace(at, 2, "$99999999"); // the value's length: 4 -> 99999999
    REQUIRE(log.size() == 189687);
    fixture replayed;
    kv::replay_report r = kv::replay_log(log, replayed.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.truncated_bytes == 0);
    CHECK(r.good_length == 3380);
    CHECK(r.records == 100);
    CHECK(r.error == "corrupt record at byte 3380: at byte 3406, bulk length 99999999 points past "
                     "the next record (at byte 3423) and past the end of the file (189687 bytes)");
}

TEST_CASE("a length corrupted inside the record before the last one is refused too") {
    std::vector<std::size_t> starts;
    std::string log = set_log(20, &starts);
    std::size_t at = log.find("$3\r\nv18\r\n", starts[18]);
    log.replace(at, 2, "$999");
    fixture replayed;
    kv::replay_report r = kv::replay_log(log, replayed.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.good_length == starts[18]);
    CHECK(r.error.find("points past the next record (at byte " + std::to_string(starts[19] + 2) +
                       ")") != std::string::npos);
}

TEST_CASE("corruption anywhere before the last record is refused at the record that holds it") {
    std::vector<std::size_t> starts;
    const std::string log = set_log(20, &starts);
    struct damage {
        const char* name;
        std::size_t record;                                   // which record it hits
        std::string (*apply)(std::string, std::size_t start); // the damaged log
        std::size_t problem_from_start; // where the damage is seen, from the record
        const char* what;               // the error after "corrupt record at byte S: "
    };
    const damage cases[] = {
        {"first byte", 0, [](std::string l, std::size_t s) { return l.replace(s, 1, "x"); }, 0,
         "expected '*', found 'x'"},
        {"the argument count", 5,
         [](std::string l, std::size_t s) { return l.replace(s + 1, 1, "a"); }, 1,
         "expected the argument count (a digit), found 'a'"},
        {"the count line's LF", 5,
         [](std::string l, std::size_t s) { return l.replace(s + 3, 1, "x"); }, 3,
         "expected '\\n' after '\\r', found 'x'"},
        {"a count one too big", 6,
         [](std::string l, std::size_t s) { return l.replace(s + 1, 1, "4"); }, 32,
         "expected '$' (the bulk header of argument 4 of 4), found '*'"},
        {"a bulk length", 7, [](std::string l, std::size_t s) { return l.replace(s + 14, 1, "x"); },
         14, "expected the bulk length (a digit), found 'x'"},
        {"a bulk length with a leading zero", 7,
         [](std::string l, std::size_t s) { return l.insert(s + 14, "0"); }, 15,
         "the bulk length has a leading zero"},
        {"a byte more in a value", 9,
         [](std::string l, std::size_t s) { return l.insert(s + 29, "Z"); }, 30,
         "expected '\\r\\n' after the 2 bytes of argument 3 of 3, found '9\\r'"},
        {"a byte less in a value", 9,
         [](std::string l, std::size_t s) { return l.erase(s + 29, 1); }, 30,
         "expected '\\r\\n' after the 2 bytes of argument 3 of 3, found '\\n*'"},
        {"a NUL instead of the record's '*'", 18,
         [](std::string l, std::size_t s) { return l.replace(s, 1, std::string(1, '\0')); }, 0,
         "expected '*', found '\\x00'"},
    };
    for (const damage& d : cases) {
        INFO(d.name);
        std::size_t start = starts[d.record];
        std::string bad = d.apply(log, start);
        fixture replayed;
        kv::replay_report r = kv::replay_log(bad, replayed.eng);
        CHECK_FALSE(r.ok);
        CHECK(r.records == d.record);
        CHECK(r.good_length == start);
        CHECK(r.error_offset == start + d.problem_from_start);
        std::string at = d.problem_from_start == 0
                             ? ""
                             : "at byte " + std::to_string(start + d.problem_from_start) + ", ";
        CHECK(r.error == "corrupt record at byte " + std::to_string(start) + ": " + at + d.what);
        // The last record torn as well changes nothing: the damage before it still counts.
        fixture torn;
        r = kv::replay_log(std::string_view(bad).substr(0, bad.size() - 5), torn.eng);
        CHECK_FALSE(r.ok);
        CHECK(r.good_length == start);
    }
}

TEST_CASE("a length that points past the next record but not past the end is refused at its "
          "record, also when its end falls on a CRLF inside a later record") {
    std::vector<std::size_t> starts;
    const std::string log = set_log(20, &starts);
    std::size_t at = log.find("$3\r\nv10\r\n", starts[10]);
    for (int length = 4; length < 80; ++length) {
        std::string bad = log;
        bad.replace(at, 2, "$" + std::to_string(length));
        fixture replayed;
        kv::replay_report r = kv::replay_log(bad, replayed.eng);
        INFO("length " << length << ": " << r.error);
        CHECK_FALSE(r.ok);
        CHECK(r.records == 10);
        CHECK(r.good_length == starts[10]);
        if (length < 6)
            continue; // 4 and 5 end inside its own CRLF or on the next record's '*'
        CHECK(r.error.find("bulk length " + std::to_string(length)) != std::string::npos);
        CHECK(r.error.find(" points past the next record (at byte " +
                           std::to_string(starts[11] + (length > 9 ? 1 : 0)) + ")") !=
              std::string::npos);
    }
}

TEST_CASE("a length that swallows whole records exactly is refused, not replayed as one value") {
    std::vector<std::size_t> starts;
    std::string log = set_log(20, &starts);
    // Record 10's value "v10" (3 bytes) grown to end where record 12's last CRLF begins: the
    // parse stays in step afterwards, and records 11 and 12 would vanish into the value.
    std::size_t at = log.find("$3\r\nv10\r\n", starts[10]);
    std::size_t data = at + 4;
    std::size_t length = starts[13] - 2 - data;
    log.replace(at, 2, "$" + std::to_string(length));
    fixture replayed;
    kv::replay_report r = kv::replay_log(log, replayed.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.records == 10);
    CHECK(r.good_length == starts[10]);
    CHECK(r.error_offset == at);
    CHECK(r.error == "corrupt record at byte " + std::to_string(starts[10]) + ": at byte " +
                         std::to_string(at) + ", bulk length " + std::to_string(length) +
                         " points past the next record (at byte " + std::to_string(starts[11] + 1) +
                         "): every record up to byte " + std::to_string(starts[13] + 1) +
                         " reads as its data");
}

TEST_CASE("a length ending by chance where a later value holds a record is blamed, not the "
          "unknown command that record seems to be") {
    std::string log = record({"SET", "key:0", "v0"});
    std::size_t second = log.size();
    log += record({"SET", "a", "v"});
    std::size_t third = log.size();
    log += record({"SET", "b", "\r\n*1\r\n$5\r\nBOGUS\r\ntail"}) + record({"SET", "c", "1"});
    std::size_t at = log.find("$1\r\nv\r\n", second);
    std::size_t length = log.find("\r\n*1\r\n$5") - (at + 4); // its data ends on that CRLF
    log.replace(at, 2, "$" + std::to_string(length));
    fixture replayed;
    kv::replay_report r = kv::replay_log(log, replayed.eng);
    CHECK_FALSE(r.ok);
    CHECK(r.records == 1);
    CHECK(r.good_length == second);
    CHECK(r.error_offset == at);
    CHECK(r.error.find("bulk length " + std::to_string(length) +
                       " points past the next record (at byte " + std::to_string(third + 1) +
                       "); reading on from where its data ends") != std::string::npos);
    CHECK(r.error.find("a record the server refuses it: ERR unknown command 'BOGUS'") !=
          std::string::npos);
}

TEST_CASE("a value that holds RESP records replays as a value") {
    std::string inner = record({"SET", "x", "1"}) + record({"DEL", "x"});
    std::string log = record({"SET", "a", "\r\n" + inner}) + record({"SET", "b", inner + "z"}) +
                      record({"SET", "c", "2"});
    fixture replayed;
    kv::replay_report r = kv::replay_log(log, replayed.eng);
    CHECK(r.ok);
    CHECK(r.records == 3);
    CHECK(replayed.run({"EXISTS", "x"}) == ":0\r\n");
}

TEST_CASE("one damaged byte anywhere drops nothing silently: refused at its record, or kept") {
    std::vector<std::size_t> starts;
    const std::string log = set_log(12, &starts);
    for (std::size_t i = 0; i < log.size(); ++i) {
        std::size_t holder = 0; // the record that holds byte i
        while (holder + 1 < starts.size() && starts[holder + 1] <= i)
            ++holder;
        for (char c : {'x', '9', '0', '*', '$', '\r', '\n', '\0'}) {
            if (log[i] == c)
                continue;
            std::string bad = log;
            bad[i] = c;
            fixture replayed;
            kv::replay_report r = kv::replay_log(bad, replayed.eng);
            INFO("byte " << i << " := " << int(c) << ": " << r.error);
            if (!r.ok)
                CHECK(r.good_length == starts[holder]);
            else if (r.truncated_bytes > 0) // only the last record reads like a torn one
                CHECK(holder == starts.size() - 1);
            else
                CHECK(r.records == starts.size()); // a byte of a value: undetectable
        }
    }
}

TEST_CASE("any wrong bulk length before the last record is refused at its record") {
    std::vector<std::size_t> starts;
    const std::string log = set_log(12, &starts);
    std::size_t wrong = 0;
    for (std::size_t k = 0; k < starts.size(); ++k) {
        std::size_t end = k + 1 < starts.size() ? starts[k + 1] : log.size();
        for (std::size_t at = log.find('$', starts[k]); at < end; at = log.find('$', at + 1)) {
            std::size_t line_end = log.find('\r', at);
            std::string original = log.substr(at + 1, line_end - at - 1);
            for (long length :
                 {0L,  1L,  2L,  3L,  5L,  7L,  10L, 11L,  20L,  31L,  33L,  34L,    40L,      63L,
                  64L, 65L, 66L, 67L, 68L, 70L, 99L, 100L, 101L, 150L, 200L, 10000L, 99999999L}) {
                if (std::to_string(length) == original)
                    continue;
                std::string bad = log;
                bad.replace(at + 1, original.size(), std::to_string(length));
                fixture replayed;
                kv::replay_report r = kv::replay_log(bad, replayed.eng);
                INFO("record " << k << ", length at byte " << at << " := " << length << ": "
                               << r.error);
                ++wrong;
                if (k + 1 == starts.size() && r.ok) { // the last record may read as torn
                    CHECK(r.truncated_bytes > 0);
                    CHECK(r.good_length == starts[k]);
                    continue;
                }
                CHECK_FALSE(r.ok);
                CHECK(r.good_length == starts[k]);
                CHECK(r.records == k);
            }
        }
    }
    CHECK(wrong > 900);
}

TEST_CASE("every cut inside the last record is a truncated tail; earlier records are all kept") {
    std::vector<std::size_t> starts;
    // The last record's value holds CRLFs and '*' but no record header: still a torn tail.
    std::string log = set_log(5, &starts) + record({"SET", "last", "a\r\n*b\r\n$c*\r\n"});
    std::size_t last = starts.back() + record({"SET", "key:4", "v4"}).size();
    for (std::size_t cut = last + 1; cut < log.size(); ++cut) {
        INFO("cut at " << cut);
        fixture replayed;
        kv::replay_report r = kv::replay_log(std::string_view(log).substr(0, cut), replayed.eng);
        CHECK(r.ok);
        CHECK(r.records == 5);
        CHECK(r.good_length == last);
        CHECK(r.truncated_bytes == cut - last);
    }
}

TEST_CASE("records the writer never writes are corruption: *0, inline commands, blank lines") {
    for (std::string bad : {"*0\r\n", "*-1\r\n", "SET a 1\r\n", "\r\n", "*1\r\n$-1\r\n"}) {
        INFO(bad);
        fixture replayed;
        kv::replay_report r = kv::replay_log(
            record({"SET", "a", "1"}) + bad + record({"SET", "b", "2"}), replayed.eng);
        CHECK_FALSE(r.ok);
        CHECK(r.good_length == 27);
        CHECK(r.error.starts_with("corrupt record at byte 27: "));
    }
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

namespace {

/// A file's bytes and modification time.
struct file_state {
    std::string bytes;
    std::int64_t mtime_ns = 0;
    bool operator==(const file_state&) const = default;
};

file_state state_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return {corio::test::read_plain(path),
            std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

kv::aof_options options_for(const std::string& path) {
    kv::aof_options opts;
    opts.path = path;
    opts.fsync = kv::fsync_policy::always;
    opts.rewrite_percentage = 0;
    return opts;
}

/// Start-up as corio-kv does it: load; when accepted, open, log one SET, close.
corio::task<kv::load_report> start_and_append(kv::aof_log* log, fixture* f) {
    auto loading = log->load(f->eng);
    kv::load_report r = co_await std::move(loading);
    if (r.ok) {
        f->eng.set_propagation(&log->buffer());
        auto opening = log->open(r.length);
        corio::result<void> opened = co_await std::move(opening);
        REQUIRE(opened);
        f->run({"SET", "new", "record"});
        log->commit();
    }
    co_await log->close(); // writes what is pending and fsyncs
    f->eng.set_propagation(nullptr);
    co_return r;
}

kv::load_report start_on(const std::string& path, fixture& f) {
    corio::io_context ctx;
    kv::aof_log log(options_for(path), f.keyspace);
    return corio::sync_wait(ctx, start_and_append(&log, &f));
}

} // namespace

TEST_CASE("start-up refuses a log corrupt before its tail and leaves it byte for byte as it was") {
    corio::test::temp_dir dir;
    std::string path = dir / "appendonly.aof";
    std::vector<std::size_t> starts;
    const std::string log = set_log(30, &starts);
    const std::string torn = log + record({"SET", "torn", "value"}).substr(0, 20);
    struct damage {
        const char* name;
        std::string content;
        std::size_t record; // the record refused
    };
    auto replaced = [](std::string l, std::size_t at, std::size_t n, const std::string& with) {
        return l.replace(at, n, with);
    };
    const damage cases[] = {
        {"first byte", replaced(log, 0, 1, "x"), 0},
        {"inside a header", replaced(log, starts[3] + 2, 1, "\n"), 3},
        {"inside a bulk length", replaced(log, starts[8] + 14, 1, "-"), 8},
        {"inside data, the length no longer matching", replaced(log, starts[12] + 30, 1, ""), 12},
        {"a length pointing past later records and the end",
         replaced(log, starts[5] + 25, 1, "999"), 5},
        {"a length pointing past the next record", replaced(log, starts[5] + 25, 1, "41"), 5},
        {"just before the tail", replaced(log, starts[29], 1, "+"), 29},
        {"just before a torn tail, its end on the CRLF after it",
         replaced(torn, starts[29] + 26, 1, "7"), 29},
    };
    for (const damage& d : cases) {
        INFO(d.name);
        corio::test::write_plain(path, d.content);
        file_state before = state_of(path);
        fixture f;
        kv::load_report r = start_on(path, f);
        CHECK_FALSE(r.ok);
        CHECK(r.message.starts_with("aof: " + path + ": corrupt record at byte " +
                                    std::to_string(starts[d.record]) + ": "));
        CHECK(r.message.find("\naof: " + path +
                             ": refusing to start; the file was not changed. "
                             "`corio-kv --aof-repair` (same --dir and --appendfilename) cuts it "
                             "at byte " +
                             std::to_string(starts[d.record]) + ", dropping the " +
                             std::to_string(d.content.size() - starts[d.record]) +
                             " bytes from there on") != std::string::npos);
        CHECK(state_of(path) == before);
        CHECK_FALSE(fs::exists(path + ".bak"));
    }
}

TEST_CASE("start-up cuts a torn last record, at every cut point, before anything is appended") {
    corio::test::temp_dir dir;
    std::string path = dir / "appendonly.aof";
    std::vector<std::size_t> starts;
    const std::string good = set_log(4, &starts);
    const std::string last = record({"SET", "last", "some\r\nvalue"});
    for (std::size_t n = 1; n < last.size(); ++n) {
        INFO("cut after " << n << " bytes of the last record");
        corio::test::write_plain(path, good + last.substr(0, n));
        fixture f;
        kv::load_report r = start_on(path, f);
        CHECK(r.ok);
        CHECK(r.records == 4);
        CHECK(r.length == good.size());
        CHECK(r.message ==
              "aof: " + path +
                  ": truncated tail: the file ends inside the record at "
                  "byte " +
                  std::to_string(good.size()) + " (" + std::to_string(n) +
                  " bytes, the well-formed beginning of a record, as a crash leaves it): "
                  "cutting the log from " +
                  std::to_string(good.size() + n) + " to " + std::to_string(good.size()) +
                  " bytes; 4 records kept");
        CHECK(f.keyspace.size() == 5); // the 4 replayed and the new one
        std::string after = corio::test::read_plain(path);
        CHECK(after == good + record({"SET", "new", "record"}));
        fixture again;
        kv::replay_report replayed = kv::replay_log(after, again.eng);
        CHECK(replayed.ok);
        CHECK(replayed.truncated_bytes == 0);
        CHECK(replayed.records == 5);
    }
}

namespace {

corio::task<void> open_and_set(kv::aof_log* log, fixture* f, std::uint64_t length) {
    auto opening = log->open(length);
    corio::result<void> opened = co_await std::move(opening);
    REQUIRE(opened);
    f->run({"SET", "x", "1"});
    log->commit();
    co_await log->close();
}

} // namespace

TEST_CASE("open() at a length shorter than the file cuts the rest off before the first append, so "
          "a torn record never ends up in the middle of the log") {
    corio::test::temp_dir dir;
    std::string path = dir / "appendonly.aof";
    std::string good = record({"SET", "a", "1"}) + record({"SET", "b", "2"});
    std::string torn = "*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$100\r\n" + std::string(60, 'v');
    corio::test::write_plain(path, good + torn);
    fixture f(false);
    {
        corio::io_context ctx;
        kv::aof_log log(options_for(path), f.keyspace);
        f.eng.set_propagation(&log.buffer());
        corio::sync_wait(ctx, open_and_set(&log, &f, good.size()));
        f.eng.set_propagation(nullptr);
    }
    std::string after = corio::test::read_plain(path);
    CHECK(after == good + record({"SET", "x", "1"}));
    fixture replayed;
    kv::replay_report r = kv::replay_log(after, replayed.eng);
    CHECK(r.ok);
    CHECK(r.records == 3);
}

namespace {

kv::repair_report repair(const std::string& path) {
    corio::io_context ctx;
    return corio::sync_wait(ctx, kv::repair_log(path));
}

} // namespace

TEST_CASE("repair cuts exactly at the first bad record, says what it cut, and keeps the original") {
    corio::test::temp_dir dir;
    std::string path = dir / "appendonly.aof";
    std::vector<std::size_t> starts;
    const std::string log = set_log(30, &starts);

    SUBCASE("a length pointing past later records") {
        std::string bad = log;
        bad.replace(starts[10] + 26, 1, "99999"); // record 10's value: "$3" -> "$99999"
        corio::test::write_plain(path, bad);
        kv::repair_report r = repair(path);
        CHECK(r.ok);
        CHECK(r.changed);
        CHECK(r.cut_at == starts[10]);
        CHECK(r.records == 10);
        CHECK(r.dropped == bad.size() - starts[10]);
        CHECK(r.backup == path + ".bak");
        CHECK(r.message == "aof: " + path + ": corrupt record at byte " +
                               std::to_string(starts[10]) + ": at byte " +
                               std::to_string(starts[10] + 25) +
                               ", bulk length 99999 points past "
                               "the next record (at byte " +
                               std::to_string(starts[11] + 4) + ") and past the end of the file (" +
                               std::to_string(bad.size()) + " bytes)\naof: " + path +
                               ": cut at byte " + std::to_string(starts[10]) + ": dropped " +
                               std::to_string(bad.size() - starts[10]) + " bytes (from byte " +
                               std::to_string(starts[10]) +
                               " to the end), kept 10 records; the "
                               "original is saved as " +
                               path + ".bak");
        CHECK(corio::test::read_plain(path) == log.substr(0, starts[10]));
        CHECK(corio::test::read_plain(path + ".bak") == bad);

        // Repaired, it loads; a second repair finds nothing to do.
        fixture f;
        kv::load_report loaded = start_on(path, f);
        CHECK(loaded.ok);
        CHECK(loaded.message.empty());
        CHECK(loaded.records == 10);
        kv::repair_report again = repair(path);
        CHECK(again.ok);
        CHECK_FALSE(again.changed);
        CHECK(again.message ==
              "aof: " + path + ": 11 records, " +
                  std::to_string(starts[10] + record({"SET", "new", "record"}).size()) +
                  " bytes, well-formed to the end: nothing to repair");
    }
    SUBCASE("a truncated tail, and an earlier backup that must not be overwritten") {
        corio::test::write_plain(path + ".bak", "older");
        corio::test::write_plain(path, log.substr(0, starts[29] + 7));
        kv::repair_report r = repair(path);
        CHECK(r.ok);
        CHECK(r.changed);
        CHECK(r.cut_at == starts[29]);
        CHECK(r.records == 29);
        CHECK(r.dropped == 7);
        CHECK(r.backup == path + ".bak.1");
        CHECK(r.message.starts_with("aof: " + path +
                                    ": truncated tail: the file ends inside the "
                                    "record at byte " +
                                    std::to_string(starts[29]) + " (7 bytes"));
        CHECK(corio::test::read_plain(path) == log.substr(0, starts[29]));
        CHECK(corio::test::read_plain(path + ".bak") == "older");
        CHECK(corio::test::read_plain(path + ".bak.1") == log.substr(0, starts[29] + 7));
    }
    SUBCASE("a record the server refuses") {
        std::string bad =
            log.substr(0, starts[20]) + record({"BOGUS", "x"}) + log.substr(starts[20]);
        corio::test::write_plain(path, bad);
        kv::repair_report r = repair(path);
        CHECK(r.ok);
        CHECK(r.cut_at == starts[20]);
        CHECK(r.message.find("unknown command 'BOGUS'") != std::string::npos);
        CHECK(corio::test::read_plain(path) == log.substr(0, starts[20]));
    }
    SUBCASE("a clean log is left alone") {
        corio::test::write_plain(path, log);
        file_state before = state_of(path);
        kv::repair_report r = repair(path);
        CHECK(r.ok);
        CHECK_FALSE(r.changed);
        CHECK(state_of(path) == before);
        CHECK_FALSE(fs::exists(path + ".bak"));
    }
    SUBCASE("a missing log is an error") {
        kv::repair_report r = repair(path);
        CHECK_FALSE(r.ok);
        CHECK(r.message == "aof: " + path + ": cannot open it: No such file or directory");
    }
}

namespace {

corio::task<void> two_servers_one_log(std::string path, kv::load_report* refused,
                                      kv::repair_report* repaired) {
    fixture f;
    fixture other;
    kv::aof_log first(options_for(path), f.keyspace);
    kv::aof_log second(options_for(path), other.keyspace);
    auto loading = first.load(f.eng);
    kv::load_report r = co_await std::move(loading);
    REQUIRE(r.ok);
    auto opening = first.open(r.length);
    corio::result<void> opened = co_await std::move(opening);
    REQUIRE(opened);
    auto loading_too = second.load(other.eng);
    *refused = co_await std::move(loading_too);
    auto repairing = kv::repair_log(path);
    *repaired = co_await std::move(repairing);
    co_await second.close();
    co_await first.close();
}

} // namespace

TEST_CASE("a log another server holds is refused by start-up and by repair (one writer only)") {
    corio::test::temp_dir dir;
    std::string path = dir / "appendonly.aof";
    std::string torn = record({"SET", "a", "1"}) + "*3\r\n$3\r\nSE";
    corio::test::write_plain(path, torn);
    kv::load_report refused;
    kv::repair_report repaired;
    {
        corio::io_context ctx;
        corio::sync_wait(ctx, two_servers_one_log(path, &refused, &repaired));
    }
    CHECK_FALSE(refused.ok);
    CHECK(refused.message == "aof: " + path +
                                 ": locked by another process (a server using this "
                                 "log?): refusing to start");
    CHECK_FALSE(repaired.ok);
    CHECK(repaired.message == "aof: " + path +
                                  ": locked by another process (a server using this "
                                  "log?): not repairing");
    // The first one cut the torn tail; nothing else touched the file.
    CHECK(corio::test::read_plain(path) == record({"SET", "a", "1"}));
}

int kv_aof_fuzz_one(const std::uint8_t* data, std::size_t size); // tests/fuzz/aof_fuzz.cpp

TEST_CASE("every AOF fuzz corpus file passes the fuzz target's checks") {
    fs::path dir = fs::path(CORIO_SOURCE_ROOT) / "tests" / "fuzz" / "corpus" / "aof";
    REQUIRE(fs::is_directory(dir));
    std::size_t files = 0;
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
        if (!e.is_regular_file())
            continue;
        std::string data = corio::test::read_plain(e.path());
        INFO(e.path().filename().string());
        CHECK(kv_aof_fuzz_one(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()) ==
              0);
        ++files;
    }
    CHECK(files >= 19);
}
