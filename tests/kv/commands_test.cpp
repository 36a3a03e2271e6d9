// SPDX-License-Identifier: MIT
// Every command's replies and errors as redis-server 7.0 gives them, expiry on access with an
// injected clock, and background expiry of keys nobody touches.
#include "commands.hpp"

#include "kv_support.hpp"

#include <doctest/doctest.h>

#include <string>

using kv::test::bulk;
using kv::test::fixture;

TEST_CASE("PING, ECHO, SELECT and QUIT") {
    fixture f;
    CHECK(f.run({"PING"}) == "+PONG\r\n");
    CHECK(f.run({"ping", "hi"}) == bulk("hi"));
    CHECK(f.run({"PING", "a", "b"}) == "-ERR wrong number of arguments for 'ping' command\r\n");
    CHECK(f.run({"ECHO", "x"}) == bulk("x"));
    CHECK(f.run({"SELECT", "0"}) == "+OK\r\n");
    CHECK(f.run({"SELECT", "1"}) == "-ERR DB index is out of range\r\n");
    CHECK(f.run({"SELECT", "x"}) == "-ERR value is not an integer or out of range\r\n");
    std::string out;
    kv::reply_writer w(out);
    std::vector<std::string_view> quit{"QUIT"};
    CHECK(f.eng.execute(quit, w) == kv::exec_result::quit);
    CHECK(out == "+OK\r\n");
}

TEST_CASE("unknown commands and wrong arity get Redis's errors") {
    fixture f;
    CHECK(f.run({"foo", "a", "b"}) ==
          "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
    CHECK(f.run({"FOO"}) == "-ERR unknown command 'FOO', with args beginning with: \r\n");
    CHECK(f.run({"FOO", "a\r\nb", "c"}) ==
          "-ERR unknown command 'FOO', with args beginning with: 'a  b' 'c' \r\n");
    CHECK(f.run({"get"}) == "-ERR wrong number of arguments for 'get' command\r\n");
    CHECK(f.run({"GET", "a", "b"}) == "-ERR wrong number of arguments for 'get' command\r\n");
    CHECK(f.run({"mset", "a"}) == "-ERR wrong number of arguments for 'mset' command\r\n");
    CHECK(f.run({"mset", "a", "1", "b"}) == "-ERR wrong number of arguments for 'mset' command\r\n");
    CHECK(f.run({"keys"}) == "-ERR wrong number of arguments for 'keys' command\r\n");
    CHECK(f.run({"dbsize", "x"}) == "-ERR wrong number of arguments for 'dbsize' command\r\n");
}

TEST_CASE("SET and GET, binary safe, with NX, XX and GET") {
    fixture f;
    CHECK(f.run({"GET", "k"}) == "$-1\r\n");
    CHECK(f.run({"SET", "k", "v"}) == "+OK\r\n");
    CHECK(f.run({"GET", "k"}) == bulk("v"));
    std::string_view bin("\0\r\n", 3);
    CHECK(f.run({"SET", bin, bin}) == "+OK\r\n");
    CHECK(f.run({"GET", bin}) == bulk(bin));
    CHECK(f.run({"SET", "k", "w", "NX"}) == "$-1\r\n");
    CHECK(f.run({"GET", "k"}) == bulk("v"));
    CHECK(f.run({"SET", "n", "w", "XX"}) == "$-1\r\n");
    CHECK(f.run({"GET", "n"}) == "$-1\r\n");
    CHECK(f.run({"SET", "k", "w", "xx"}) == "+OK\r\n");
    CHECK(f.run({"SET", "k", "z", "GET"}) == bulk("w"));
    CHECK(f.run({"SET", "new", "1", "GET"}) == "$-1\r\n");
    CHECK(f.run({"SET", "k", "v", "NX", "XX"}) == "-ERR syntax error\r\n");
    CHECK(f.run({"SET", "k", "v", "EX"}) == "-ERR syntax error\r\n");
    CHECK(f.run({"SET", "k", "v", "EX", "1", "PX", "1"}) == "-ERR syntax error\r\n");
    CHECK(f.run({"SET", "k", "v", "KEEPTTL", "EX", "1"}) == "-ERR syntax error\r\n");
    CHECK(f.run({"SET", "k", "v", "bogus"}) == "-ERR syntax error\r\n");
}

TEST_CASE("SET EX/PX/EXAT/PXAT set deadlines; bad times get Redis's errors") {
    fixture f;
    CHECK(f.run({"SET", "k", "v", "EX", "0"}) == "-ERR invalid expire time in 'set' command\r\n");
    CHECK(f.run({"SET", "k", "v", "PX", "-5"}) == "-ERR invalid expire time in 'set' command\r\n");
    CHECK(f.run({"SET", "k", "v", "EX", "abc"}) ==
          "-ERR value is not an integer or out of range\r\n");
    CHECK(f.run({"SET", "k", "v", "EX", "9223372036854775807"}) ==
          "-ERR invalid expire time in 'set' command\r\n");
    CHECK(f.run({"SET", "k", "v", "PX", "9223372036854775807"}) ==
          "-ERR invalid expire time in 'set' command\r\n");
    CHECK(f.run({"SET", "k", "v", "EX", "10"}) == "+OK\r\n");
    CHECK(f.run({"TTL", "k"}) == ":10\r\n");
    CHECK(f.run({"PTTL", "k"}) == ":10000\r\n");
    CHECK(f.run({"SET", "k", "v", "PX", "1500"}) == "+OK\r\n");
    CHECK(f.run({"TTL", "k"}) == ":2\r\n"); // rounded, as Redis does
    std::string at = std::to_string(f.now_ms / 1000 + 100);
    CHECK(f.run({"SET", "k", "v", "EXAT", at}) == "+OK\r\n");
    CHECK(f.run({"TTL", "k"}) == ":100\r\n");
    CHECK(f.run({"SET", "k", "w", "KEEPTTL"}) == "+OK\r\n");
    CHECK(f.run({"TTL", "k"}) == ":100\r\n");
    CHECK(f.run({"SET", "k", "w"}) == "+OK\r\n");
    CHECK(f.run({"TTL", "k"}) == ":-1\r\n");
}

TEST_CASE("TTL and PTTL say -2 for a missing key and -1 for a key without expiry") {
    fixture f;
    CHECK(f.run({"TTL", "nokey"}) == ":-2\r\n");
    CHECK(f.run({"PTTL", "nokey"}) == ":-2\r\n");
    f.run({"SET", "k", "v"});
    CHECK(f.run({"TTL", "k"}) == ":-1\r\n");
    CHECK(f.run({"PTTL", "k"}) == ":-1\r\n");
}

TEST_CASE("a key expires when touched after its deadline (injected clock)") {
    fixture f;
    f.run({"SET", "k", "v", "PX", "100"});
    f.now_ms += 99;
    CHECK(f.run({"GET", "k"}) == bulk("v"));
    CHECK(f.run({"PTTL", "k"}) == ":1\r\n");
    f.now_ms += 1;
    CHECK(f.run({"GET", "k"}) == "$-1\r\n");
    CHECK(f.run({"EXISTS", "k"}) == ":0\r\n");
    CHECK(f.keyspace.size() == 0);
    CHECK(f.keyspace.expired_keys() == 1);
}

TEST_CASE("background expiry removes keys nobody touches") {
    fixture f;
    for (int i = 0; i < 1000; ++i) {
        std::string key = "k" + std::to_string(i);
        f.run({"SET", key, "v", "PX", i < 900 ? "10" : "100000"});
    }
    f.run({"SET", "forever", "v"});
    CHECK(f.keyspace.size() == 1001);
    f.now_ms += 10;
    // Bounded cycles, as the server's 100 ms timer runs them: each stops once a sample finds a
    // quarter or less expired, so a few cycles leave almost nothing expired behind.
    for (int cycle = 0; cycle < 50 && f.keyspace.size() > 101; ++cycle)
        (void)f.keyspace.active_expire_cycle(std::chrono::milliseconds(25));
    CHECK(f.keyspace.size() <= 101 + 900 / 4);
    CHECK(f.keyspace.expired_keys() >= 900 - 900 / 4);
    CHECK(f.keyspace.volatile_count() == f.keyspace.size() - 1);
    // Nothing live was removed.
    CHECK(f.run({"GET", "forever"}) == bulk("v"));
    CHECK(f.run({"GET", "k950"}) == bulk("v"));
}

TEST_CASE("a background cycle stops at once when few sampled keys expired") {
    fixture f;
    for (int i = 0; i < 100; ++i)
        f.run({"SET", "k" + std::to_string(i), "v", "EX", "100"});
    kv::expire_cycle_stats s = f.keyspace.active_expire_cycle(std::chrono::milliseconds(25));
    CHECK(s.sampled == 20);
    CHECK(s.expired == 0);
}

TEST_CASE("INCR, DECR, INCRBY, DECRBY with overflow and type errors") {
    fixture f;
    CHECK(f.run({"INCR", "n"}) == ":1\r\n");
    CHECK(f.run({"INCRBY", "n", "41"}) == ":42\r\n");
    CHECK(f.run({"DECR", "n"}) == ":41\r\n");
    CHECK(f.run({"DECRBY", "n", "50"}) == ":-9\r\n");
    CHECK(f.run({"GET", "n"}) == bulk("-9"));
    CHECK(f.run({"INCRBY", "n", "x"}) == "-ERR value is not an integer or out of range\r\n");
    f.run({"SET", "s", "abc"});
    CHECK(f.run({"INCR", "s"}) == "-ERR value is not an integer or out of range\r\n");
    f.run({"SET", "s", " 1"});
    CHECK(f.run({"INCR", "s"}) == "-ERR value is not an integer or out of range\r\n");
    f.run({"SET", "max", "9223372036854775807"});
    CHECK(f.run({"INCR", "max"}) == "-ERR increment or decrement would overflow\r\n");
    f.run({"SET", "min", "-9223372036854775808"});
    CHECK(f.run({"DECR", "min"}) == "-ERR increment or decrement would overflow\r\n");
    CHECK(f.run({"DECRBY", "n", "-9223372036854775808"}) == "-ERR decrement would overflow\r\n");
    CHECK(f.run({"INCR", "a", "b"}) == "-ERR wrong number of arguments for 'incr' command\r\n");
}

TEST_CASE("INCR keeps the key's TTL") {
    fixture f;
    f.run({"SET", "n", "1", "EX", "100"});
    CHECK(f.run({"INCR", "n"}) == ":2\r\n");
    CHECK(f.run({"TTL", "n"}) == ":100\r\n");
}

TEST_CASE("DEL, EXISTS, MGET, MSET, DBSIZE, FLUSHALL") {
    fixture f;
    CHECK(f.run({"MSET", "a", "1", "b", "2", "c", "3"}) == "+OK\r\n");
    CHECK(f.run({"MGET", "a", "x", "c"}) == "*3\r\n" + bulk("1") + "$-1\r\n" + bulk("3"));
    CHECK(f.run({"EXISTS", "a", "a", "x"}) == ":2\r\n");
    CHECK(f.run({"DBSIZE"}) == ":3\r\n");
    CHECK(f.run({"DEL", "a", "x", "b"}) == ":2\r\n");
    CHECK(f.run({"DBSIZE"}) == ":1\r\n");
    CHECK(f.run({"FLUSHALL", "bogus"}) == "-ERR syntax error\r\n");
    CHECK(f.run({"FLUSHALL"}) == "+OK\r\n");
    CHECK(f.run({"DBSIZE"}) == ":0\r\n");
    CHECK(f.run({"FLUSHALL", "ASYNC"}) == "+OK\r\n");
}

TEST_CASE("MSET clears the TTL of the keys it sets") {
    fixture f;
    f.run({"SET", "a", "1", "EX", "100"});
    f.run({"MSET", "a", "2"});
    CHECK(f.run({"TTL", "a"}) == ":-1\r\n");
}

TEST_CASE("EXPIRE, PEXPIRE, EXPIREAT, PERSIST with NX/XX/GT/LT") {
    fixture f;
    CHECK(f.run({"EXPIRE", "nokey", "10"}) == ":0\r\n");
    f.run({"SET", "k", "v"});
    CHECK(f.run({"EXPIRE", "k", "10", "XX"}) == ":0\r\n");
    CHECK(f.run({"EXPIRE", "k", "10", "NX"}) == ":1\r\n");
    CHECK(f.run({"EXPIRE", "k", "20", "NX"}) == ":0\r\n");
    CHECK(f.run({"EXPIRE", "k", "5", "GT"}) == ":0\r\n");
    CHECK(f.run({"EXPIRE", "k", "50", "GT"}) == ":1\r\n");
    CHECK(f.run({"EXPIRE", "k", "60", "LT"}) == ":0\r\n");
    CHECK(f.run({"PEXPIRE", "k", "3000", "LT"}) == ":1\r\n");
    CHECK(f.run({"TTL", "k"}) == ":3\r\n");
    CHECK(f.run({"EXPIRE", "k", "10", "NX", "XX"}) ==
          "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    CHECK(f.run({"EXPIRE", "k", "10", "GT", "LT"}) ==
          "-ERR GT and LT options at the same time are not compatible\r\n");
    CHECK(f.run({"EXPIRE", "k", "10", "foo"}) == "-ERR Unsupported option foo\r\n");
    CHECK(f.run({"EXPIRE", "k", "x"}) == "-ERR value is not an integer or out of range\r\n");
    CHECK(f.run({"EXPIRE", "k", "99999999999999999"}) ==
          "-ERR invalid expire time in 'expire' command\r\n");
    CHECK(f.run({"PERSIST", "k"}) == ":1\r\n");
    CHECK(f.run({"PERSIST", "k"}) == ":0\r\n");
    CHECK(f.run({"TTL", "k"}) == ":-1\r\n");
    std::string at = std::to_string(f.now_ms / 1000 + 30);
    CHECK(f.run({"EXPIREAT", "k", at}) == ":1\r\n");
    CHECK(f.run({"TTL", "k"}) == ":30\r\n");
    // A deadline in the past deletes the key at once.
    CHECK(f.run({"EXPIRE", "k", "-1"}) == ":1\r\n");
    CHECK(f.run({"EXISTS", "k"}) == ":0\r\n");
}

TEST_CASE("KEYS matches glob patterns and skips expired keys") {
    fixture f;
    f.run({"MSET", "user:1", "a", "user:2", "b", "other", "c"});
    f.run({"SET", "user:3", "c", "PX", "5"});
    f.now_ms += 5;
    std::string reply = f.run({"KEYS", "user:*"});
    CHECK(reply.substr(0, 4) == "*2\r\n");
    CHECK(reply.find("user:1") != std::string::npos);
    CHECK(reply.find("user:2") != std::string::npos);
    CHECK(f.run({"KEYS", "oth?r"}) == "*1\r\n" + bulk("other"));
    CHECK(f.run({"KEYS", "nothing*"}) == "*0\r\n");
}

TEST_CASE("APPEND, STRLEN, TYPE") {
    fixture f;
    CHECK(f.run({"APPEND", "k", "ab"}) == ":2\r\n");
    CHECK(f.run({"APPEND", "k", "cd"}) == ":4\r\n");
    CHECK(f.run({"STRLEN", "k"}) == ":4\r\n");
    CHECK(f.run({"TYPE", "k"}) == "+string\r\n");
    CHECK(f.run({"TYPE", "x"}) == "+none\r\n");
}

TEST_CASE("COMMAND, CONFIG and INFO answer what redis-cli and redis-benchmark ask") {
    fixture f;
    CHECK(f.run({"COMMAND", "COUNT"}) == ":32\r\n");
    CHECK(f.run({"COMMAND", "DOCS"}) == "*0\r\n");
    std::string info = f.run({"COMMAND", "INFO", "get"});
    CHECK(info.rfind("*1\r\n*10\r\n$3\r\nget\r\n:2\r\n", 0) == 0);
    CHECK(f.run({"CONFIG", "GET", "save"}) == "*0\r\n"); // no server hooks in this unit
    CHECK(f.run({"CONFIG", "GET"}) ==
          "-ERR wrong number of arguments for 'config|get' command\r\n");
    CHECK(f.run({"CONFIG", "BOGUS"}) == "-ERR unknown subcommand 'BOGUS'. Try CONFIG HELP.\r\n");
    f.run({"SET", "k", "v", "EX", "5"});
    std::string text = f.run({"INFO", "keyspace"});
    CHECK(text.find("# Keyspace\r\ndb0:keys=1,expires=1,avg_ttl=0\r\n") != std::string::npos);
}

TEST_CASE("write commands log records with absolute expiry times") {
    fixture f(true);
    f.run({"SET", "k", "v", "EX", "10"});
    f.run({"GET", "k"});
    f.run({"SET", "k", "v", "NX"}); // not set: not logged
    f.run({"INCR", "n"});
    f.run({"EXPIRE", "n", "5"});
    f.run({"DEL", "nokey"}); // deleted nothing: not logged
    std::string deadline = std::to_string(f.now_ms + 10000);
    std::string n_deadline = std::to_string(f.now_ms + 5000);
    std::string want = "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$4\r\nPXAT\r\n" +
                       bulk(deadline) + "*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$1\r\n1\r\n" +
                       "*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nn\r\n" + bulk(n_deadline);
    CHECK(f.log == want);
}

TEST_CASE("a key that expires is logged as a DEL") {
    fixture f(true);
    f.run({"SET", "k", "v", "PX", "1"});
    f.log.clear();
    f.now_ms += 1;
    CHECK(f.run({"GET", "k"}) == "$-1\r\n");
    CHECK(f.log == "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n");
}
