// SPDX-License-Identifier: MIT
// corio-http end to end: the real server on port 0, driven by a blocking client (exact bytes and
// headers) and by curl when it is installed.
#include "http_client.hpp"

#include "examples/http/http_date.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>

using namespace http_test;

namespace {

std::string patterned(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>('A' + (i * 7 + seed) % 23);
    return s;
}

std::string last_modified_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return corio_http::format_http_date(st.st_mtime);
}

/// The number before " requests answered 503" in a log line, or 0.
unsigned long long refused_in(const std::string& line) {
    std::size_t at = line.find(" requests answered 503");
    if (at == std::string::npos)
        return 0;
    std::size_t start = line.rfind(' ', at - 1);
    return std::stoull(line.substr(start + 1, at - start - 1));
}

bool have_curl() {
    return std::system("command -v curl >/dev/null 2>&1") == 0;
}

std::string run(const std::string& command) {
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0)
        out.append(buf.data(), n);
    return out;
}

} // namespace

TEST_CASE("GET answers with the file's bytes and exact headers; HEAD with the same head only") {
    temp_root root;
    root.write("hello.txt", "hello, http\n");
    server srv({"--root", root.dir.string()});
    client c(srv.port);
    response r = c.get("/hello.txt");
    CHECK(r.status == 200);
    CHECK(r.body == "hello, http\n");
    CHECK(r.header("content-length") == "12");
    CHECK(r.header("content-type") == "text/plain; charset=utf-8");
    CHECK(r.header("last-modified") == last_modified_of(root.dir / "hello.txt"));
    CHECK(r.header("accept-ranges") == "bytes");
    CHECK(r.header("connection") == "keep-alive");
    CHECK(r.header("server") == "corio-http");
    CHECK(corio_http::parse_http_date(r.header("date")).has_value());

    c.send("HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    response h = read_response(c.in, true);
    CHECK(h.status == 200);
    CHECK(h.header("content-length") == "12");
    CHECK(h.header("content-type") == "text/plain; charset=utf-8");
    // No body followed the HEAD response: the next response starts right away.
    response again = c.get("/hello.txt");
    CHECK(again.status == 200);
    CHECK(again.body == "hello, http\n");
}

TEST_CASE("keep-alive: two requests on one connection, counted as one connection") {
    temp_root root;
    root.write("a.txt", "first");
    root.write("b.txt", "second");
    server srv({"--root", root.dir.string(), "--provided-buffers", "0"});
    {
        client c(srv.port);
        CHECK(c.get("/a.txt").body == "first");
        CHECK(c.get("/b.txt").body == "second");
        std::string stats = srv.stats();
        INFO(stats);
        CHECK(stat_field(stats, "accepted") == "1");
        CHECK(stat_field(stats, "requests") == "2");
        CHECK(stat_field(stats, "2xx") == "2");
        CHECK(stat_field(stats, "connections") == "1");
        CHECK(stat_field(stats, "bytes_buffered") == "4096"); // one connection's receive buffer
        CHECK(stat_field(stats, "open_fds") != "<none>");
    }
}

TEST_CASE("pipelined requests in one write are answered in order with exact bodies") {
    temp_root root;
    root.write("one.txt", "1");
    root.write("two.html", "<p>2</p>");
    std::string large = patterned(300000); // larger than the cache admits below: streamed
    root.write("large.bin", large);
    root.write("dir/index.html", "index");
    server srv({"--root", root.dir.string(), "--cache-max-file", "100000"});
    client c(srv.port);
    c.send("GET /one.txt HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n"
           "HEAD /two.html HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /dir/ HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /large.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-1009\r\n\r\n"
           "GET /two.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    response r1 = read_response(c.in);
    CHECK(r1.status == 200);
    CHECK(r1.body == "1");
    response r2 = read_response(c.in);
    CHECK(r2.status == 404);
    response r3 = read_response(c.in);
    CHECK(r3.status == 200);
    CHECK(r3.body == large);
    response r4 = read_response(c.in, true);
    CHECK(r4.status == 200);
    CHECK(r4.header("content-length") == "8");
    response r5 = read_response(c.in);
    CHECK(r5.status == 200);
    CHECK(r5.body == "index");
    CHECK(r5.header("content-type") == "text/html; charset=utf-8");
    response r6 = read_response(c.in);
    CHECK(r6.status == 206);
    CHECK(r6.body == large.substr(1000, 10));
    response r7 = read_response(c.in);
    CHECK(r7.status == 200);
    CHECK(r7.body == "<p>2</p>");
    CHECK(r7.header("connection") == "close");
    CHECK(c.in.at_eof());
}

TEST_CASE("ranges: 206 with Content-Range, 416 with bytes */size, several ranges get 200") {
    temp_root root;
    std::string body = patterned(1000);
    root.write("r.bin", body);
    server srv({"--root", root.dir.string()});
    client c(srv.port);
    response r = c.get("/r.bin", "Range: bytes=10-19\r\n");
    CHECK(r.status == 206);
    CHECK(r.body == body.substr(10, 10));
    CHECK(r.header("content-range") == "bytes 10-19/1000");
    CHECK(r.header("content-length") == "10");
    r = c.get("/r.bin", "Range: bytes=990-\r\n");
    CHECK(r.status == 206);
    CHECK(r.body == body.substr(990));
    CHECK(r.header("content-range") == "bytes 990-999/1000");
    r = c.get("/r.bin", "Range: bytes=-5\r\n");
    CHECK(r.status == 206);
    CHECK(r.body == body.substr(995));
    r = c.get("/r.bin", "Range: bytes=900-5000\r\n");
    CHECK(r.header("content-range") == "bytes 900-999/1000");
    r = c.get("/r.bin", "Range: bytes=1000-\r\n");
    CHECK(r.status == 416);
    CHECK(r.header("content-range") == "bytes */1000");
    CHECK(r.body.empty());
    r = c.get("/r.bin", "Range: bytes=0-1,5-6\r\n");
    CHECK(r.status == 200);
    CHECK(r.body == body);
    // If-Range with another date: the whole body.
    r = c.get("/r.bin", "Range: bytes=0-1\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
    CHECK(r.status == 200);
    CHECK(r.body.size() == 1000);
    // If-Modified-Since at the file's own time: 304 without a body.
    r = c.get("/r.bin", "If-Modified-Since: " + last_modified_of(root.dir / "r.bin") + "\r\n");
    CHECK(r.status == 304);
    CHECK(r.body.empty());
    r = c.get("/r.bin");
    CHECK(r.status == 200); // the connection is still in step after the 304
}

TEST_CASE("a sparse 5 GiB file: HEAD reports its size and a range beyond 4 GiB is served") {
    temp_root root;
    fs::path big = root.dir / "sparse.bin";
    int fd = ::open(big.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    const std::uint64_t size = 5ULL << 30;
    const std::uint64_t marker_at = (4ULL << 30) + 12345;
    const std::string marker = "marker beyond 4 GiB";
    REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
    REQUIRE(::pwrite(fd, marker.data(), marker.size(), static_cast<off_t>(marker_at)) ==
            static_cast<ssize_t>(marker.size()));
    ::close(fd);
    server srv({"--root", root.dir.string()});
    client c(srv.port);
    c.send("HEAD /sparse.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    response h = read_response(c.in, true);
    CHECK(h.status == 200);
    CHECK(h.header("content-length") == "5368709120");
    std::string range =
        "bytes=" + std::to_string(marker_at) + "-" + std::to_string(marker_at + marker.size() - 1);
    response r = c.get("/sparse.bin", "Range: " + range + "\r\n");
    CHECK(r.status == 206);
    CHECK(r.body == marker);
    CHECK(r.header("content-range") == range.substr(6).insert(0, "bytes ") + "/5368709120");
    r = c.get("/sparse.bin", "Range: bytes=-4\r\n");
    CHECK(r.status == 206);
    CHECK(r.body == std::string(4, '\0'));
    CHECK(r.header("content-range") == "bytes 5368709116-5368709119/5368709120");
}

TEST_CASE("directories: index when present, else 403; no slash is 301; --index '' makes them 403") {
    temp_root root;
    root.write("with/index.html", "<h1>index</h1>");
    fs::create_directories(root.dir / "without");
    root.write("index.html", "top");
    {
        server srv({"--root", root.dir.string()});
        client c(srv.port);
        CHECK(c.get("/with/").body == "<h1>index</h1>");
        response moved = c.get("/with?q=1");
        CHECK(moved.status == 301);
        CHECK(moved.header("location") == "/with/?q=1");
        CHECK(c.get("/").body == "top");
        CHECK(c.get("/without/").status == 403);
        CHECK(c.get("/index.html/").status == 404); // a file named as a directory
    }
    server srv({"--root", root.dir.string(), "--index", ""});
    client c(srv.port);
    CHECK(c.get("/with/").status == 403);
    CHECK(c.get("/with/index.html").body == "<h1>index</h1>");
}

TEST_CASE("traversal attempts are refused and never serve a byte from outside the root") {
    temp_root root;
    const std::string secret = "SECRET outside the root";
    { std::ofstream(root.outside / "secret.txt") << secret; }
    root.write("ok.txt", "inside");
    fs::create_symlink(root.outside / "secret.txt", root.dir / "escape");
    fs::create_symlink("../outside", root.dir / "escape_dir");
    fs::create_symlink("ok.txt", root.dir / "inner_link");
    server srv({"--root", root.dir.string()});
    struct attempt {
        const char* target;
        int status;
    };
    const attempt attempts[] = {
        {"/../outside/secret.txt", 400},      {"/%2e%2e/outside/secret.txt", 400},
        {"/.%2E/outside/secret.txt", 400},    {"/..%2foutside%2fsecret.txt", 400},
        {"/%2F..%2Foutside/secret.txt", 400}, {"/ok.txt%00.html", 400},
        {"/..\\outside\\secret.txt", 400},    {"/escape", 403},
        {"/escape_dir/secret.txt", 403},      {"/nothing/../../outside/secret.txt", 400},
    };
    for (const attempt& a : attempts) {
        INFO(a.target);
        client c(srv.port);
        response r = c.get(a.target);
        CHECK(r.status == a.status);
        CHECK(r.body.find("SECRET") == std::string::npos);
    }
    client c(srv.port);
    CHECK(c.get("/inner_link").body == "inside"); // a symlink that stays inside is fine
}

TEST_CASE("limits: request line 414, header count and bytes 431, then the connection closes") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--max-request-line", "100", "--max-headers", "5",
                "--max-header-bytes", "200"});
    {
        client c(srv.port);
        c.send("GET /" + std::string(200, 'x') + " HTTP/1.1\r\nHost: t\r\n\r\n");
        response r = read_response(c.in);
        CHECK(r.status == 414);
        CHECK(r.header("connection") == "close");
        CHECK(c.in.at_eof());
    }
    {
        client c(srv.port);
        std::string many;
        for (int i = 0; i < 6; ++i)
            many += "X" + std::to_string(i) + ": v\r\n";
        c.send("GET /a HTTP/1.1\r\nHost: t\r\n" + many + "\r\n");
        CHECK(read_response(c.in).status == 431);
        CHECK(c.in.at_eof());
    }
    {
        client c(srv.port);
        c.send("GET /a HTTP/1.1\r\nHost: t\r\nBig: " + std::string(300, 'v') + "\r\n\r\n");
        CHECK(read_response(c.in).status == 431);
        CHECK(c.in.at_eof());
    }
    {
        // A head that never ends is refused as soon as it is over the limit.
        client c(srv.port);
        c.send("GET /a HTTP/1.1\r\nHost: t\r\nEndless: " + std::string(400, 'v'));
        CHECK(read_response(c.in).status == 431);
        CHECK(c.in.at_eof());
    }
    client c(srv.port);
    CHECK(c.get("/a").body == "a"); // and the server still serves everyone else
}

TEST_CASE("methods and syntax: 405 with Allow, 501, 505, 400, 413, and bodies discarded") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--max-body", "10"});
    struct bad {
        std::string request;
        int status;
    };
    const bad cases[] = {
        {"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 405},
        {"DELETE /a HTTP/1.1\r\nHost: t\r\n\r\n", 405},
        {"BREW /a HTTP/1.1\r\nHost: t\r\n\r\n", 501},
        {"GET /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
        {"GET /a HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        {"GET /a HTTP/1.1\r\n\r\n", 400},
        {"GET /a  HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /a HTTP/1.1\nHost: t\n\n", 400},
        {"GET /a HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n", 413},
    };
    for (const bad& b : cases) {
        INFO(b.request);
        client c(srv.port);
        c.send(b.request);
        response r = read_response(c.in);
        CHECK(r.status == b.status);
        CHECK(r.header("connection") == "close");
        if (b.status == 405)
            CHECK(r.header("allow") == "GET, HEAD");
        CHECK(c.in.at_eof());
    }
    client c(srv.port);
    c.send("GET /a HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789"
           "GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(read_response(c.in).body == "a");
    CHECK(read_response(c.in).body == "a"); // the body was skipped, not parsed as a request
}

TEST_CASE("HTTP/1.0 closes after the response unless keep-alive is asked") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string()});
    {
        client c(srv.port);
        c.send("GET /a HTTP/1.0\r\n\r\n");
        response r = read_response(c.in);
        CHECK(r.body == "a");
        CHECK(r.header("connection") == "close");
        CHECK(c.in.at_eof());
    }
    client c(srv.port);
    c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(read_response(c.in).header("connection") == "keep-alive");
    CHECK(c.get("/a").body == "a");
}

TEST_CASE("a client that sends half a request is closed after --header-timeout-ms") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--header-timeout-ms", "200"});
    client slow(srv.port);
    slow.send("GET /a HTTP/1.1\r\nHost: t\r\n");
    CHECK(slow.in.at_eof()); // within the reader's 5 s: the server closed it
    client silent(srv.port); // connected and sent nothing at all
    CHECK(silent.in.at_eof());
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "timed_out") == "2");
    CHECK(stat_field(stats, "requests") == "0");
}

TEST_CASE("an idle keep-alive connection is closed after --keepalive-timeout-ms") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--keepalive-timeout-ms", "200"});
    client c(srv.port);
    CHECK(c.get("/a").body == "a");
    CHECK(c.in.at_eof());
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "timed_out") == "1");
}

TEST_CASE("SIGTERM: idle connections close at once, a response in flight completes, exit 0") {
    temp_root root;
    std::string big = patterned(8 << 20, 3);
    root.write("big.bin", big);
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--drain-ms", "5000"});
    client idle(srv.port);
    CHECK(idle.get("/a").body == "a");
    client busy(srv.port);
    busy.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(busy.in.line() == "HTTP/1.1 200 OK"); // the response has started; the rest waits for us
    ::kill(srv.pid, SIGTERM);
    CHECK(srv.next_line("signal ") == "signal 15: draining 2 connections");
    CHECK(idle.in.at_eof()); // closed while the big response is still unread
    // The listener was closed before the idle connections were: new connections are refused.
    int late = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin = corio::test::loopback(srv.port);
    CHECK(::connect(late, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == -1);
    CHECK(errno == ECONNREFUSED);
    ::close(late);
    std::string head_rest;
    for (std::string l = busy.in.line(); !l.empty() && l[0] != '<'; l = busy.in.line())
        head_rest += l + "\n";
    CHECK(head_rest.find("Content-Length: 8388608") != std::string::npos);
    CHECK(head_rest.find("Connection: close") == std::string::npos); // sent before the signal
    CHECK(busy.in.bytes(big.size()) == big);
    CHECK(srv.exits_cleanly_after(0));
}

TEST_CASE("SIGTERM with a client that never reads: cancelled at --drain-ms, still exit 0") {
    temp_root root;
    root.write("big.bin", patterned(16 << 20));
    server srv({"--root", root.dir.string(), "--drain-ms", "300"});
    client stuck(srv.port);
    stuck.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(stuck.in.line() == "HTTP/1.1 200 OK");
    CHECK(srv.exits_cleanly_after(SIGTERM));
}

TEST_CASE("a cached file is re-read once it changes (--cache-validity-ms 0 checks every time)") {
    temp_root root;
    root.write("c.txt", "old");
    server srv({"--root", root.dir.string(), "--cache-validity-ms", "0"});
    client c(srv.port);
    CHECK(c.get("/c.txt").body == "old");
    CHECK(c.get("/c.txt").body == "old");
    root.write("c.txt", "brand new");
    CHECK(c.get("/c.txt").body == "brand new");
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "cache_misses") == "2");
    CHECK(stat_field(stats, "cache_revalidated") == "1");
}

TEST_CASE("the real curl: GET, HEAD, a range and a traversal with --path-as-is") {
    if (!have_curl()) {
        MESSAGE("curl is not installed: skipped");
        return;
    }
    temp_root root;
    root.write("hello.txt", "hello, curl\n");
    std::string body = patterned(5000);
    root.write("r.bin", body);
    { std::ofstream(root.outside / "secret.txt") << "SECRET"; }
    server srv({"--root", root.dir.string()});
    std::string base = "http://127.0.0.1:" + std::to_string(srv.port);
    std::string get = run("curl -sS -D - " + base + "/hello.txt");
    CHECK(get.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(get.find("Content-Length: 12\r\n") != std::string::npos);
    CHECK(get.substr(get.size() - 12) == "hello, curl\n");
    std::string head = run("curl -sS -I " + base + "/hello.txt");
    CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(head.find("Content-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
    CHECK(head.find("hello") == std::string::npos);
    CHECK(run("curl -sS -r 100-199 " + base + "/r.bin") == body.substr(100, 100));
    std::string escape =
        run("curl -sS --path-as-is -w '%{http_code}' " + base + "/../outside/secret.txt");
    CHECK(escape.find("SECRET") == std::string::npos);
    CHECK(escape.substr(escape.size() - 3) == "400");
    std::string keep = run("curl -sS -o /dev/null -o /dev/null -w '%{num_connects} ' " + base +
                           "/hello.txt " + base + "/r.bin");
    CHECK(keep == "1 0 "); // the second transfer reused the first connection
}

TEST_CASE("pipelined responses with large cached bodies survive partial sends, in order") {
    temp_root root;
    std::string body = patterned(100000, 5); // cached, sent by reference (not copied)
    root.write("m.bin", body);
    server srv({"--root", root.dir.string()});
    client c(srv.port);
    std::string requests;
    for (int i = 0; i < 10; ++i)
        requests += i % 3 == 2 ? "GET /m.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=50000-\r\n\r\n"
                               : "GET /m.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    c.send(requests);
    for (int i = 0; i < 10; ++i) {
        INFO(i);
        response r = read_response(c.in);
        if (i % 3 == 2) {
            CHECK(r.status == 206);
            CHECK(r.body == body.substr(50000));
        } else {
            CHECK(r.status == 200);
            CHECK(r.body == body);
        }
    }
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "cache_misses") == "1");
    CHECK(stat_field(stats, "cache_hits") == "9");
}

TEST_CASE("connections over --max-connections are closed at once; the others are served") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--max-connections", "1"});
    client first(srv.port);
    CHECK(first.get("/a").body == "a");
    client second(srv.port);
    CHECK(second.in.at_eof());
    CHECK(first.get("/a").body == "a");
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "rejected") == "1");
}

TEST_CASE("regression: at the fd limit the 503s are logged at most once a second with their "
          "count and counted in the stats, and serving goes on (they were answered silently)") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--cache-bytes", "0"}, corio::test::child_stderr::pipe,
               {.nofile = 32});
    // Connections one at a time, each asked for HEAD /a: a HEAD's file is closed before its
    // answer is sent, so each connection holds one fd. 200s until a connection takes the last
    // free fd; its HEAD gets 503 (no fd to open the file), and so do nine more on it.
    std::vector<std::unique_ptr<client>> open;
    int status = 200;
    while (status == 200 && open.size() < 100) {
        open.push_back(std::make_unique<client>(srv.port));
        open.back()->send("HEAD /a HTTP/1.1\r\nHost: t\r\n\r\n");
        status = read_response(open.back()->in, true).status;
    }
    REQUIRE(status == 503);
    std::string nine;
    for (int i = 0; i < 9; ++i)
        nine += "HEAD /a HTTP/1.1\r\nHost: t\r\n\r\n";
    open.back()->send(nine);
    for (int i = 0; i < 9; ++i)
        CHECK(read_response(open.back()->in, true).status == 503);
    // More connections than fit: they wait in the listen backlog while accepting backs off.
    std::vector<std::unique_ptr<client>> waiting;
    for (int i = 0; i < 5; ++i) {
        waiting.push_back(std::make_unique<client>(srv.port));
        waiting.back()->send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    // Logged once for the ten (twice if they straddled a report), not once per request.
    corio::test::reader errors(srv.err);
    unsigned long long reported = 0;
    int lines = 0;
    while (reported < 10) {
        std::string line = errors.line();
        INFO(line);
        REQUIRE(line.starts_with("corio-http: out of file descriptors"));
        ++lines;
        reported += refused_in(line);
    }
    CHECK(reported == 10);
    CHECK(lines <= 2);
    // Closing the connections frees their fds: the waiting ones are accepted and served.
    open.clear();
    for (auto& w : waiting) {
        response r = read_response(w->in);
        CHECK(r.status == 200);
        CHECK(r.body == "a");
    }
    std::string stats = srv.stats();
    INFO(stats);
    CHECK(stat_field(stats, "out_of_fds_503") == "10");
    CHECK(stat_field(stats, "accept_backoffs") != "<none>");
    CHECK(stat_field(stats, "accept_backoffs") != "0");
    waiting.clear();
    CHECK(srv.exits_cleanly_after(SIGTERM));
}

TEST_CASE("regression: a client that does not close after the response that ends its "
          "connection is closed after --linger-timeout-ms and counted in linger_timeouts (that "
          "timeout was not counted anywhere)") {
    temp_root root;
    root.write("a", "a");
    server srv({"--root", root.dir.string(), "--linger-timeout-ms", "100"});
    client c(srv.port);
    c.send("GET /a HTTP/1.0\r\n\r\n"); // HTTP/1.0: the server closes after the response
    response r = read_response(c.in);
    CHECK(r.status == 200);
    CHECK(r.body == "a");
    CHECK(c.in.at_eof()); // its FIN; now it waits 100 ms for ours, which never comes
    // The drain waits for the lingering connection (it is not idle); the stats line printed at
    // the end then counts how the linger ended.
    ::kill(srv.pid, SIGTERM);
    CHECK(srv.next_line("signal ") == "signal 15: draining 1 connections");
    std::string stats = srv.next_line("stats: ");
    INFO(stats);
    CHECK(stat_field(stats, "linger_timeouts") == "1");
    CHECK(stat_field(stats, "timed_out") == "0");
    CHECK(srv.exits_cleanly_after(0));
}

TEST_CASE("HEAD of a missing file gets a head without a body; empty files are served") {
    temp_root root;
    root.write("empty", "");
    root.write("a", "a");
    server srv({"--root", root.dir.string()});
    client c(srv.port);
    c.send("HEAD /missing HTTP/1.1\r\nHost: t\r\n\r\nGET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    response h = read_response(c.in, true);
    CHECK(h.status == 404);
    response a = read_response(c.in);
    CHECK(a.status == 200); // the 404's body would have been read as this response
    CHECK(a.body == "a");
    response e = c.get("/empty");
    CHECK(e.status == 200);
    CHECK(e.header("content-length") == "0");
    CHECK(e.body.empty());
    CHECK(c.get("/empty", "Range: bytes=0-0\r\n").status == 416);
    CHECK(c.get("/a").body == "a");
}

TEST_CASE("a client that stops reading a response is dropped after --send-timeout-ms") {
    temp_root root;
    const std::size_t size = 32u << 20;
    root.write("big.bin", std::string(size, 'b'));
    server srv({"--root", root.dir.string(), "--send-timeout-ms", "200"});
    client stuck(srv.port);
    stuck.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(stuck.in.line() == "HTTP/1.1 200 OK");
    // Wait (bounded) until the server reports the timeout; the client reads nothing meanwhile.
    std::string stats;
    for (int i = 0; i < 250 && stat_field(stats, "timed_out") != "1"; ++i) {
        ::poll(nullptr, 0, 20);
        stats = srv.stats();
    }
    INFO(stats);
    CHECK(stat_field(stats, "timed_out") == "1");
    std::string got = stuck.in.rest(); // what was already queued, then EOF
    CHECK(got.size() < size);
    client other(srv.port);
    CHECK(other.get("/big.bin", "Range: bytes=0-3\r\n").body == "bbbb");
}

TEST_CASE("a FIFO in the root is 403 at once: opening it never waits for a writer") {
    temp_root root;
    root.write("a", "a");
    REQUIRE(::mkfifo((root.dir / "pipe").c_str(), 0644) == 0);
    server srv({"--root", root.dir.string()});
    client c(srv.port);
    CHECK(c.get("/pipe").status == 403);
    CHECK(c.get("/a").body == "a");
}

// Regression: a connection revalidating a cached entry kept a pointer to it across the close of
// its file, while another connection replaced the entry (heap-use-after-free under ASan, found by
// wrk with pipelined requests on 50 connections).
TEST_CASE("many connections missing and revalidating the same cached file at once") {
    temp_root root;
    std::string body = patterned(50000, 9);
    root.write("same.bin", body);
    server srv({"--root", root.dir.string(), "--cache-validity-ms", "0"});
    std::vector<std::unique_ptr<client>> clients;
    for (int i = 0; i < 24; ++i)
        clients.push_back(std::make_unique<client>(srv.port));
    std::string burst;
    for (int i = 0; i < 4; ++i)
        burst += "GET /same.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    for (auto& c : clients)
        c->send(burst);
    for (auto& c : clients) {
        for (int i = 0; i < 4; ++i) {
            response r = read_response(c->in);
            CHECK(r.status == 200);
            CHECK(r.body == body);
        }
    }
    CHECK(srv.exits_cleanly_after(SIGTERM)); // alive, and clean under ASan
}
