// SPDX-License-Identifier: MIT
// Smoke tests of the synchronisation job's servers (examples/lab/sync, docs/synchronisation.md):
// GET/SET round trips on one connection and across connections (with two shards, keys of both
// shards and connections on both listeners), a bad line, a line that is too long, then SIGINT
// with connections still open: EOF on them, a stats line with the exact counts, exit 0. The
// servers are found like in lab_smoke_test.cpp: ../examples/lab/<name> (or CORIO_LAB_DIR).
#include "tests/support/command_line.hpp"
#include "tests/support/server_process.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using corio::test::connect_loopback;
using corio::test::reader;
using corio::test::send_all;

namespace {

fs::path lab_dir() {
    if (const char* dir = std::getenv("CORIO_LAB_DIR"))
        return dir;
    return fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "examples" / "lab";
}

/// A sync server started with --port 0; its stderr is a pipe (for the stats line).
struct server : corio::test::server_process {
    server(const std::string& name, std::vector<std::string> args)
        : server_process(lab_dir() / name, std::move(args), corio::test::child_stderr::pipe) {}

    std::string stats_line() {
        std::string text = reader(err).rest();
        std::size_t at = text.find("stats: ");
        if (at == std::string::npos)
            return "<no stats line in: " + text + ">";
        return text.substr(at, text.find('\n', at) - at);
    }
};

/// The number after ` key=` in a stats line, or -1.
long long stat_of(const std::string& stats, const std::string& key) {
    std::size_t at = stats.find(" " + key + "=");
    if (at == std::string::npos)
        return -1;
    return std::stoll(stats.substr(at + key.size() + 2));
}

/// Four connections: each SETs 16 keys of its own (pipelined, in one send) and reads them back,
/// then every connection GETs every other connection's keys, one GET missing key and a bad line;
/// a fifth connection sends a line that is too long. Then SIGINT with the four still open.
/// Returns the stats line.
std::string sync_smoke(const std::string& name, std::vector<std::string> args) {
    server srv(name, std::move(args));
    constexpr int k_conns = 4;
    constexpr int k_keys = 16;
    std::vector<int> conns;
    std::vector<reader> replies;
    for (int c = 0; c < k_conns; ++c)
        conns.push_back(connect_loopback(srv.port));
    for (int fd : conns)
        replies.emplace_back(fd);
    std::size_t in = 0;
    std::size_t out = 0;
    auto key = [](int c, int k) { return "key" + std::to_string(c) + "-" + std::to_string(k); };
    auto value = [](int c, int k) { return "value" + std::to_string(c * 100 + k); };
    for (int c = 0; c < k_conns; ++c) {
        std::string batch;
        for (int k = 0; k < k_keys; ++k)
            batch += "SET " + key(c, k) + " " + value(c, k) + "\n";
        for (int k = 0; k < k_keys; ++k)
            batch += "GET " + key(c, k) + "\n";
        send_all(conns[c], batch);
        in += batch.size();
        for (int k = 0; k < k_keys; ++k)
            CHECK(replies[c].line() == "OK");
        for (int k = 0; k < k_keys; ++k)
            CHECK(replies[c].line() == "VALUE " + value(c, k));
        out += k_keys * 3 + k_keys * 7;
        for (int k = 0; k < k_keys; ++k)
            out += value(c, k).size();
    }
    for (int c = 0; c < k_conns; ++c) {
        std::string batch;
        int other = (c + 1) % k_conns;
        for (int k = 0; k < k_keys; ++k)
            batch += "GET " + key(other, k) + "\n";
        batch += "GET nobody\nDEL x\n";
        send_all(conns[c], batch);
        in += batch.size();
        for (int k = 0; k < k_keys; ++k) {
            std::string want = "VALUE " + value(other, k);
            CHECK(replies[c].line() == want);
            out += want.size() + 1;
        }
        CHECK(replies[c].line() == "NONE");
        CHECK(replies[c].line() == "ERR bad request");
        out += 5 + 16;
    }
    int too_long = connect_loopback(srv.port);
    reader too_long_reply(too_long);
    send_all(too_long, std::string(1100, 'a'));
    in += 1100;
    CHECK(too_long_reply.line() == "ERR too long");
    CHECK(too_long_reply.at_eof());
    out += sizeof "ERR too long\n" - 1;
    ::close(too_long);

    CHECK(srv.exits_cleanly_after(SIGINT));
    for (int c = 0; c < k_conns; ++c) {
        CHECK(replies[c].at_eof());
        ::close(conns[c]);
    }
    std::string stats = srv.stats_line();
    INFO(stats);
    const long long requests = k_conns * (3 * k_keys + 2);
    CHECK(stats.rfind("stats: connections=" + std::to_string(k_conns + 1) + " requests=" +
                          std::to_string(requests) + " bytes_in=" + std::to_string(in) +
                          " bytes_out=" + std::to_string(out) + " ",
                      0) == 0);
    return stats;
}

} // namespace

TEST_CASE("lab_sync_threads answers GET and SET across connections, then exits 0 on SIGINT") {
    std::string stats = sync_smoke("lab_sync_threads", {});
    CHECK(stat_of(stats, "lock_waits") >= 0);
}

TEST_CASE("lab_sync_threads --lock-stripes 4 (sharded locks) answers the same") {
    std::string stats = sync_smoke("lab_sync_threads", {"--lock-stripes", "4"});
    CHECK(stat_of(stats, "lock_waits") >= 0);
}

TEST_CASE("lab_sync_corio with one shard answers everything itself, then exits 0 on SIGINT") {
    std::string stats = sync_smoke("lab_sync_corio", {"--shards", "1"});
    CHECK(stat_of(stats, "cross_shard") == 0);
    CHECK(stat_of(stats, "shards") == 1);
}

TEST_CASE("lab_sync_corio with two shards forwards other shards' keys, then exits 0 on SIGINT") {
    // 16 keys per connection: both shards own some, whichever listener took the connection.
    std::string stats = sync_smoke("lab_sync_corio", {"--shards", "2", "--cpus", "0"});
    CHECK(stat_of(stats, "cross_shard") > 0);
    CHECK(stat_of(stats, "cross_shard") < 4 * (3 * 16 + 2));
    // A read's requests for the other shard go there in one hop: the SETs and GETs sent in one
    // batch (when they arrive in one read) take fewer hops than requests.
    CHECK(stat_of(stats, "hops") > 0);
    CHECK(stat_of(stats, "hops") <= stat_of(stats, "cross_shard"));
    CHECK(stat_of(stats, "shards") == 2);
}

TEST_CASE("lab_sync_corio's --shards and --cpus are checked; bad values exit 2 naming them") {
    corio::test::command_result help =
        corio::test::run_command(lab_dir() / "lab_sync_corio", {"--help"});
    CHECK(help.status == 0);
    for (const char* flag : {"--port", "--shards", "--cpus", "--max-connections"}) {
        CAPTURE(flag);
        CHECK(help.out.find(std::string("\n  ") + flag + " ") != std::string::npos);
    }
    CHECK(help.out.find("--block-kind") == std::string::npos); // the echo job's, not this one's
    auto refused = [](std::vector<std::string> args, const std::string& word) {
        args.insert(args.begin(), {"--port", "0"});
        corio::test::command_result r =
            corio::test::run_command(lab_dir() / "lab_sync_corio", args);
        CAPTURE(r.err);
        CHECK(r.status == 2);
        CHECK(r.err_lines() == 1);
        CHECK(r.err.find(word) != std::string::npos);
    };
    refused({"--shards", "0"}, "--shards");
    refused({"--cpus", "1-0"}, "--cpus");
    refused({"--cpus", "x"}, "--cpus");
    refused({"--cpus", ""}, "--cpus");
    corio::test::command_result threads =
        corio::test::run_command(lab_dir() / "lab_sync_threads", {"--help"});
    CHECK(threads.status == 0);
    CHECK(threads.out.find("--shards") == std::string::npos); // corio's alone
    CHECK(threads.out.find("\n  --lock-stripes ") != std::string::npos);
}
