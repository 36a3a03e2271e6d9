// SPDX-License-Identifier: MIT
// The command lines of echo, corio-http and corio-kv (CLI11 through examples/common/cli.hpp):
// --help exits 0 listing exactly today's flags, a bad command line exits 2 with one line on
// stderr that names the flag, and a repeated flag keeps its last value, as scripts expect.
#include "tests/servers/servers.hpp"
#include "tests/support/command_line.hpp"

#include <doctest/doctest.h>

#include <sched.h>

#include <string>
#include <vector>

using namespace servers_test;
using corio::test::command_result;

namespace {

/// The flags of each server, as the scripts, docs and tests use them (besides -h/--help).
std::vector<std::string> flags_of(kind k) {
    switch (k) {
    case kind::echo:
        return {"--port",
                "--bind",
                "--sq-entries",
                "--cq-entries",
                "--buffer-size",
                "--provided-buffers",
                "--max-connections",
                "--idle-timeout-ms",
                "--drain-ms",
                "--stats-interval-ms",
                "--shards",
                "--cpus",
                "--accept"};
    case kind::http:
        return {"--root",
                "--port",
                "--bind",
                "--index",
                "--sq-entries",
                "--cq-entries",
                "--max-connections",
                "--header-timeout-ms",
                "--keepalive-timeout-ms",
                "--send-timeout-ms",
                "--linger-timeout-ms",
                "--drain-ms",
                "--max-request-line",
                "--max-headers",
                "--max-header-bytes",
                "--max-body",
                "--cache-bytes",
                "--cache-max-file",
                "--cache-validity-ms",
                "--provided-buffers",
                "--provided-buffer-size",
                "--shards",
                "--cpus",
                "--accept"};
    case kind::kv:
        return {"--port",
                "--bind",
                "--sq-entries",
                "--cq-entries",
                "--dir",
                "--appendonly",
                "--appendfilename",
                "--appendfsync",
                "--auto-aof-rewrite-percentage",
                "--auto-aof-rewrite-min-size",
                "--max-clients",
                "--client-output-buffer-limit",
                "--client-query-buffer-limit",
                "--max-output-memory",
                "--proto-max-bulk-len",
                "--timeout",
                "--drain-ms",
                "--provided-buffers",
                "--aof-repair",
                "--shards",
                "--cpus"};
    }
    return {};
}

/// Runs the server of `f` with --port 0 (should it start after all), its fixed arguments
/// (corio-http's --root) and then `extra`.
command_result run(const fixture& f, std::vector<std::string> extra) {
    std::vector<std::string> args = {"--port", "0"};
    args.insert(args.end(), f.args.begin(), f.args.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return corio::test::run_command(f.binary, args);
}

/// The option lines of a CLI11 help text: the lines of its "Options:" section (up to the blank
/// line that ends it) that start with "  -".
std::size_t option_lines(std::string help) {
    std::size_t begin = help.find("\nOptions:");
    REQUIRE(begin != std::string::npos);
    help = help.substr(begin, help.find("\n\n", begin) - begin);
    std::size_t n = 0;
    for (std::size_t at = help.find("\n  -"); at != std::string::npos;
         at = help.find("\n  -", at + 1))
        ++n;
    return n;
}

/// A refused command line: status 2, nothing on stdout, one line on stderr naming the server and
/// containing every one of `words`.
void check_refused(const command_result& r, const char* server,
                   const std::vector<std::string>& words) {
    CAPTURE(r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(r.err_lines() == 1);
    CHECK(r.err.starts_with(std::string(server) + ": "));
    for (const std::string& w : words) {
        CAPTURE(w);
        CHECK(r.err.find(w) != std::string::npos);
    }
}

} // namespace

TEST_CASE("every server's --help exits 0 on stdout and lists exactly its flags") {
    for (kind k : {kind::echo, kind::http, kind::kv}) {
        std::string name = name_of(k);
        CAPTURE(name);
        fixture f(k);
        for (std::string help : {"--help", "-h"}) {
            CAPTURE(help);
            command_result r = corio::test::run_command(f.binary, {help}); // no --root needed
            CHECK(r.status == 0);
            CHECK(r.err.empty());
            CHECK(r.out.find("Usage: " + name + " [OPTIONS]") != std::string::npos);
            for (const std::string& flag : flags_of(k)) {
                CAPTURE(flag);
                CHECK(r.out.find("\n  " + flag + " ") != std::string::npos);
            }
            CHECK(option_lines(r.out) == flags_of(k).size() + 1); // and -h,--help
        }
    }
}

TEST_CASE("a bad number exits 2 with one line naming the flag and the value") {
    for (kind k : {kind::echo, kind::http, kind::kv}) {
        std::string name = name_of(k);
        CAPTURE(name);
        fixture f(k);
        check_refused(run(f, {"--sq-entries", "12x"}), name_of(k), {"--sq-entries", "'12x'"});
        check_refused(run(f, {"--port", "65536"}), name_of(k), {"--port", "'65536'", "65535"});
        check_refused(run(f, {"--drain-ms", "-1"}), name_of(k), {"--drain-ms", "'-1'"});
        check_refused(run(f, {"--cq-entries", "0x10"}), name_of(k), {"--cq-entries", "'0x10'"});
    }
}

TEST_CASE("an unknown flag, a stray argument or a missing value exits 2 naming it") {
    for (kind k : {kind::echo, kind::http, kind::kv}) {
        std::string name = name_of(k);
        CAPTURE(name);
        fixture f(k);
        check_refused(run(f, {"--no-such-flag", "1"}), name_of(k), {"--no-such-flag"});
        check_refused(run(f, {"stray"}), name_of(k), {"stray"});
        check_refused(run(f, {"--drain-ms"}), name_of(k), {"--drain-ms"});
    }
}

TEST_CASE("a repeated flag keeps its last value (scripts append overrides)") {
    for (kind k : {kind::echo, kind::http, kind::kv}) {
        std::string name = name_of(k);
        CAPTURE(name);
        fixture f(k);
        // 192.0.2.1 (TEST-NET-1) is no address of this host: listening there would fail.
        server srv(f, {"--bind", "192.0.2.1", "--bind", "127.0.0.1"});
        connection c(f, srv.port);
        CHECK(c.exchange());
    }
}

TEST_CASE("the servers' word-valued flags refuse other words, naming the flag") {
    fixture http(kind::http);
    check_refused(run(http, {"--index", "a/b"}), "corio-http", {"--index"});
    check_refused(run(http, {"--max-request-line", "15"}), "corio-http", {">= 16"});
    fixture kv(kind::kv);
    check_refused(run(kv, {"--appendfsync", "sometimes"}), "corio-kv",
                  {"--appendfsync", "always, everysec or no", "'sometimes'"});
    check_refused(run(kv, {"--appendonly", "maybe"}), "corio-kv", {"--appendonly", "'maybe'"});
}

TEST_CASE("bad --shards and --cpus values exit 2 with one line naming the flag") {
    // A CPU this process may not run on (the VM's CPUs are few; 1023 is the last one parsed).
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    REQUIRE(::sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    int outside = 1023;
    while (outside > 0 && CPU_ISSET(outside, &allowed))
        --outside;
    for (kind k : {kind::echo, kind::http}) {
        std::string name = name_of(k);
        CAPTURE(name);
        fixture f(k);
        check_refused(run(f, {"--shards", "x"}), name_of(k), {"--shards", "'x'"});
        check_refused(run(f, {"--shards", "1025"}), name_of(k), {"--shards", "'1025'", "1024"});
        check_refused(run(f, {"--shards", "-1"}), name_of(k), {"--shards", "'-1'"});
        for (const char* bad : {"", "a", "1-0", "0,0", "0-2,1", "1024", "0,", ",0", "0--1", "+1"}) {
            CAPTURE(bad);
            check_refused(run(f, {"--cpus", bad}), name_of(k),
                          {"--cpus", "'" + std::string(bad) + "'"});
        }
        check_refused(run(f, {"--cpus", std::to_string(outside)}), name_of(k),
                      {"--cpus", "CPU " + std::to_string(outside) + " is not one"});
        check_refused(run(f, {"--accept", "all"}), name_of(k), {"--accept", "'all'"});
    }
}

TEST_CASE("corio-http without --root exits 2 naming it") {
    fixture f(kind::http);
    command_result r = corio::test::run_command(f.binary, {"--port", "0"});
    check_refused(r, "corio-http", {"--root"});
}
