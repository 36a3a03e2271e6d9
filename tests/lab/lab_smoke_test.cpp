// SPDX-License-Identifier: MIT
// Smoke tests of the laboratory servers (examples/lab; Asio's four when the build found asio.hpp,
// CORIO_LAB_ASIO): each starts on port 0, serves one
// connection (three echoes, or pipelined file requests with an ERR and an offset past the end),
// then gets SIGTERM with that connection still open and must close it, print its stats line and
// exit 0 within 5 s. The echo job's corio-lean row (lab_echo_corio_lean: a shared ring of
// provided buffers) also echoes 4 MiB sent before any is read. The servers are found next to this
// binary: ../examples/lab/<name> (CORIO_LAB_DIR overrides the folder).
#include "tests/support/command_line.hpp"
#include "tests/support/server_process.hpp"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using corio::test::connect_loopback;
using corio::test::reader;
using corio::test::send_all;

namespace {

/// Every style, in the order of bench/lab/run.py's rows (Asio's where the build has them).
const std::vector<std::string>& lab_styles() {
    static const std::vector<std::string> styles = {
        "threads",
        "epoll",
        "uring",
        "corio",
#if defined(CORIO_LAB_ASIO)
        "asio",
        "asio_uring",
#endif
    };
    return styles;
}

constexpr std::size_t lab_too_long_reply = sizeof "ERR too long\n" - 1;

fs::path lab_dir() {
    if (const char* dir = std::getenv("CORIO_LAB_DIR"))
        return dir;
    return fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "examples" / "lab";
}

/// A laboratory server started with --port 0; its stdout and stderr are pipes.
struct server : corio::test::server_process {
    server(const std::string& name, std::vector<std::string> args)
        : server_process(lab_dir() / name, std::move(args), corio::test::child_stderr::pipe) {}

    /// The `stats: ...` line from its stderr (after it exited).
    std::string stats_line() {
        std::string text = reader(err).rest();
        std::size_t at = text.find("stats: ");
        if (at == std::string::npos)
            return "<no stats line in: " + text + ">";
        return text.substr(at, text.find('\n', at) - at);
    }
};

/// Three echoes on one connection (one message larger than the buffer), then SIGTERM with the
/// connection open: EOF on it, exit 0, and a stats line with the exact byte counts. `extra` adds
/// flags (the blocking job's: the echoes must be the same).
void echo_smoke(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--buffer-size", "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    server srv(name, args);
    int conn = connect_loopback(srv.port);
    reader replies(conn);
    const std::string messages[] = {"hello, lab\n", std::string(2500, 'x'), "third\n"};
    std::size_t total = 0;
    for (const std::string& m : messages) {
        send_all(conn, m);
        CHECK(replies.bytes(m.size()) == m);
        total += m.size();
    }
    CHECK(srv.exits_cleanly_after(SIGTERM));
    CHECK(replies.at_eof());
    ::close(conn);
    std::string stats = srv.stats_line();
    INFO(stats);
    std::string bytes = "bytes_in=" + std::to_string(total) + " bytes_out=" + std::to_string(total);
    CHECK(stats.rfind("stats: connections=1 requests=", 0) == 0);
    CHECK(stats.find(bytes) != std::string::npos);
}

/// A temporary file of 64 KiB for --block-file (the blocking job's pread and mmap kinds).
struct block_file {
    fs::path path;

    block_file() {
        std::string templ = (fs::temp_directory_path() / "corio-lab-block-XXXXXX").string();
        int fd = ::mkstemp(templ.data());
        REQUIRE(fd >= 0);
        path = templ;
        std::string data(64 * 1024, 'b');
        REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
        ::close(fd);
    }
    ~block_file() { fs::remove(path); }
    block_file(const block_file&) = delete;
    block_file& operator=(const block_file&) = delete;
};

/// Every echo blocks first (--block-every 1) with each kind that reads --block-file cold, and
/// in corio with each fix: the replies and the stats line are those of echo_smoke.
void echo_blocking_smoke(const std::string& name) {
    block_file file;
    for (const char* kind : {"pread", "mmap"}) {
        CAPTURE(kind);
        std::vector<std::string> args = {"--block-every", "1",          "--block-kind",
                                         kind,            "--block-file", file.path.string()};
        echo_smoke(name, args);
        if (!name.ends_with("corio"))
            continue;
        for (const char* fix : {"ring", "offload"}) {
            CAPTURE(fix);
            std::vector<std::string> fixed = args;
            fixed.insert(fixed.end(), {"--block-fix", fix});
            echo_smoke(name, fixed);
        }
    }
}

/// A temporary --root: small.txt, big.bin (100000 patterned bytes) and a directory `sub`.
struct file_root {
    fs::path dir;
    std::string big;

    file_root() {
        std::string templ = (fs::temp_directory_path() / "corio-lab-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        dir = templ;
        for (std::size_t i = 0; i < 100000; ++i)
            big += static_cast<char>('A' + (i * 7) % 23);
        write("small.txt", "hello, lab\n");
        write("big.bin", big);
        fs::create_directory(dir / "sub");
    }
    ~file_root() { fs::remove_all(dir); }
    file_root(const file_root&) = delete;
    file_root& operator=(const file_root&) = delete;

    void write(const char* name, const std::string& text) const {
        std::FILE* f = std::fopen((dir / name).c_str(), "wb");
        REQUIRE(f != nullptr);
        REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
        std::fclose(f);
    }
};

/// Pipelined requests on one connection (answered in order: a range, a missing file, an offset
/// past the end, a bad name, a range of a large file, a directory, a malformed line), a request
/// line that is too long on a second connection, then SIGTERM with the first still open.
void files_smoke(const std::string& name, bool direct) {
    file_root root;
    std::vector<std::string> args = {"--root", root.dir.string(), "--buffer-size", "1000"};
    if (direct)
        args.push_back("--direct");
    server srv(name, args);
    int conn = connect_loopback(srv.port);
    reader replies(conn);
    const std::string requests = "GET small.txt 0 100\n"
                                 "GET missing.txt 0 10\n"
                                 "GET small.txt 50 10\n"
                                 "GET ../small.txt 0 1\n"
                                 "GET big.bin 1000 50000\n"
                                 "GET sub 0 1\n"
                                 "PUT x\n";
    send_all(conn, requests);
    std::size_t out = 0;
    auto expect_line = [&](const std::string& want) {
        CHECK(replies.line() == want);
        out += want.size() + 1;
    };
    expect_line("OK 11");
    CHECK(replies.bytes(11) == "hello, lab\n");
    out += 11;
    expect_line("ERR no such file");
    expect_line("OK 0");
    expect_line("ERR bad name");
    expect_line("OK 50000");
    CHECK(replies.bytes(50000) == root.big.substr(1000, 50000));
    out += 50000;
    std::string dir_reply = replies.line(); // O_DIRECT refuses a directory at open (EINVAL)
    CHECK(dir_reply == (direct ? "ERR cannot open (O_DIRECT unsupported?)" : "ERR not a file"));
    out += dir_reply.size() + 1;
    expect_line("ERR bad request");

    int second = connect_loopback(srv.port);
    reader second_replies(second);
    const std::string too_long(1100, 'a');
    send_all(second, too_long);
    CHECK(second_replies.line() == "ERR too long");
    CHECK(second_replies.at_eof());
    ::close(second);
    out += lab_too_long_reply;

    CHECK(srv.exits_cleanly_after(SIGTERM));
    CHECK(replies.at_eof());
    ::close(conn);
    std::string stats = srv.stats_line();
    INFO(stats);
    const std::string counts = "stats: connections=2 requests=7 bytes_in=" +
                               std::to_string(requests.size() + too_long.size()) +
                               " bytes_out=" + std::to_string(out);
    if (name.ends_with("corio")) {
        // The corio servers add the coroutine frame bytes (the runtime's peak_frame_bytes).
        CHECK(stats.rfind(counts + " frame_bytes_peak=", 0) == 0);
        CHECK(std::stoull(stats.substr(counts.size() + 18)) > 0);
    } else {
        CHECK(stats == counts);
    }
}

} // namespace

TEST_CASE("lab_echo_threads echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_threads");
}
TEST_CASE("lab_echo_epoll echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_epoll");
}
TEST_CASE("lab_echo_uring echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_uring");
}
TEST_CASE("lab_echo_corio echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_corio");
}
TEST_CASE("lab_echo_corio_lean echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_corio_lean");
}
// The lean row's slow path: a peer that sends 4 MiB before it reads a byte, through a small
// receive buffer. The server's socket buffer and the peer's hold about 1 MiB on loopback (with
// 1 MiB the send that never waits always took everything), so the server's quick send comes up
// short or with EAGAIN and the rest must go out in send_rest, in order, once; meanwhile the
// chunks pile up in the shared ring (512 buffers of 1000 bytes) and the socket. A second
// connection's echoes must come back whole and unmixed from the same ring.
TEST_CASE("lab_echo_corio_lean echoes 4 MiB sent before any is read, byte-exact") {
    server srv("lab_echo_corio_lean", {"--buffer-size", "1000"});
    int bulk = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(bulk >= 0);
    int small_buffer = 4096;
    REQUIRE(::setsockopt(bulk, SOL_SOCKET, SO_RCVBUF, &small_buffer, sizeof small_buffer) == 0);
    sockaddr_in to = corio::test::loopback(srv.port);
    REQUIRE(::connect(bulk, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
    std::string payload(4 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>((i * 131 + i / 997) & 0xff);
    // The writer gives up after k_timeout_ms without progress (a hung server fails, not hangs).
    timeval patience{corio::test::k_timeout_ms / 1000, 0};
    REQUIRE(::setsockopt(bulk, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience) == 0);
    std::size_t written = 0; // the writer's alone until join()
    std::promise<void> all_written;
    std::future<void> writer_done = all_written.get_future();
    std::thread writer([bulk, &payload, &written, &all_written] {
        while (written < payload.size()) {
            ssize_t n =
                ::send(bulk, payload.data() + written, payload.size() - written, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            written += static_cast<std::size_t>(n);
        }
        all_written.set_value();
    });

    int chat = connect_loopback(srv.port);
    reader chat_replies(chat);
    std::size_t chat_bytes = 0;
    for (int i = 0; i < 100; ++i) {
        std::string m = "message " + std::to_string(i) + std::string(i * 10, 'a' + i % 26) + "\n";
        send_all(chat, m);
        CHECK(chat_replies.bytes(m.size()) == m);
        chat_bytes += m.size();
    }
    // Reading starts once all 4 MiB are in flight. The bound is for a host whose loopback holds
    // less (the writer then waits for this read, and the slow path is taken all the more).
    bool in_flight = writer_done.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    CAPTURE(in_flight);
    reader bulk_replies(bulk);
    bool same = bulk_replies.bytes(payload.size()) == payload; // not CHECKed: 4 MiB of diff
    CHECK(same);
    writer.join();
    CHECK(written == payload.size());

    CHECK(srv.exits_cleanly_after(SIGTERM));
    CHECK(bulk_replies.at_eof());
    CHECK(chat_replies.at_eof());
    ::close(bulk);
    ::close(chat);
    std::string stats = srv.stats_line();
    INFO(stats);
    std::string total = std::to_string(payload.size() + chat_bytes);
    CHECK(stats.rfind("stats: connections=2 requests=", 0) == 0);
    CHECK(stats.find(" bytes_in=" + total + " bytes_out=" + total + " ") != std::string::npos);
}
// The lean row is the echo job's alone: the blocking job runs lab_echo_corio (bench/lab/run.py).
TEST_CASE("lab_echo_corio_lean takes the lab's flags and refuses the blocking job's") {
    std::filesystem::path lean = lab_dir() / "lab_echo_corio_lean";
    corio::test::command_result help = corio::test::run_command(lean, {"--help"});
    CHECK(help.status == 0);
    for (const char* flag : {"--port", "--bind", "--buffer-size", "--sq-entries", "--cq-entries",
                             "--max-connections"}) {
        CAPTURE(flag);
        CHECK(help.out.find(std::string("\n  ") + flag + " ") != std::string::npos);
    }
    for (std::vector<std::string> args :
         {std::vector<std::string>{"--block-every", "1"}, {"--block-fix", "offload"}}) {
        CAPTURE(args[0]);
        args.insert(args.begin(), {"--port", "0"});
        corio::test::command_result r = corio::test::run_command(lean, args);
        CAPTURE(r.err);
        CHECK(r.status == 2);
        CHECK(r.err_lines() == 1);
        CHECK(r.err.find("--block") != std::string::npos);
    }
}
#if defined(CORIO_LAB_ASIO)
TEST_CASE("lab_echo_asio echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_asio");
}
TEST_CASE("lab_echo_asio_uring echoes, then closes and exits 0 on SIGTERM") {
    echo_smoke("lab_echo_asio_uring");
}
TEST_CASE("lab Asio echo servers exit 0 on SIGINT too") {
    for (const char* name : {"lab_echo_asio", "lab_echo_asio_uring"}) {
        CAPTURE(name);
        server srv(name, {});
        int conn = connect_loopback(srv.port);
        reader replies(conn);
        send_all(conn, "ping\n");
        CHECK(replies.bytes(5) == "ping\n");
        CHECK(srv.exits_cleanly_after(SIGINT));
        CHECK(replies.at_eof());
        ::close(conn);
        CHECK(srv.stats_line() == "stats: connections=1 requests=1 bytes_in=5 bytes_out=5");
    }
}
#endif
TEST_CASE("lab echo servers echo the same when every request reads a cold file first") {
    for (const std::string& style : lab_styles())
        echo_blocking_smoke("lab_echo_" + style);
}
TEST_CASE("lab_files_threads answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_threads", false);
}
TEST_CASE("lab_files_threads --direct reads with O_DIRECT") {
    files_smoke("lab_files_threads", true);
}
TEST_CASE("lab_files_epoll answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_epoll", false);
}
TEST_CASE("lab_files_epoll --direct reads with O_DIRECT") {
    files_smoke("lab_files_epoll", true);
}
TEST_CASE("lab_files_uring answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_uring", false);
}
TEST_CASE("lab_files_uring --direct reads with O_DIRECT") {
    files_smoke("lab_files_uring", true);
}
TEST_CASE("lab_files_corio answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_corio", false);
}
TEST_CASE("lab_files_corio --direct reads with O_DIRECT") {
    files_smoke("lab_files_corio", true);
}
#if defined(CORIO_LAB_ASIO)
TEST_CASE("lab_files_asio answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_asio", false);
}
TEST_CASE("lab_files_asio --direct reads with O_DIRECT") {
    files_smoke("lab_files_asio", true);
}
TEST_CASE("lab_files_asio_uring answers pipelined requests in order, then exits 0 on SIGTERM") {
    files_smoke("lab_files_asio_uring", false);
}
TEST_CASE("lab_files_asio_uring --direct reads with O_DIRECT") {
    files_smoke("lab_files_asio_uring", true);
}
#endif

// The shared command line (lab::parse_args, CLI11): the same flags for every server, the files
// job's two more; --help exits 0, a bad command line exits 2 with one line naming the flag.
TEST_CASE("every lab server's --help lists its flags; bad flags exit 2 naming them") {
    const std::vector<std::string> common = {
        "--port",           "--bind",        "--buffer-size",  "--sq-entries",  "--cq-entries",
        "--max-connections", "--block-every", "--block-kind", "--block-file", "--block-fix"};
    for (const char* job : {"echo", "files"}) {
        for (const std::string& style : lab_styles()) {
            std::string name = std::string("lab_") + job + "_" + style;
            CAPTURE(name);
            bool files = std::string(job) == "files";
            corio::test::command_result help =
                corio::test::run_command(lab_dir() / name, {"--help"});
            CHECK(help.status == 0);
            std::vector<std::string> flags = common;
            if (files)
                flags.insert(flags.end(), {"--root", "--direct"});
            for (const std::string& flag : flags) {
                CAPTURE(flag);
                CHECK(help.out.find("\n  " + flag + " ") != std::string::npos);
            }
            CHECK((help.out.find("--root") != std::string::npos) == files);

            std::vector<std::string> root =
                files ? std::vector<std::string>{"--root", "/"} : std::vector<std::string>{};
            auto refused = [&](std::vector<std::string> args, const std::string& word) {
                args.insert(args.begin(), root.begin(), root.end());
                args.insert(args.begin(), {"--port", "0"});
                corio::test::command_result r = corio::test::run_command(lab_dir() / name, args);
                CAPTURE(r.err);
                CHECK(r.status == 2);
                CHECK(r.err_lines() == 1);
                CHECK(r.err.find(word) != std::string::npos);
            };
            refused({"--sq-entries", "0"}, "--sq-entries"); // at least 1 here
            refused({"--buffer-size", "1k"}, "--buffer-size");
            refused({"--no-such-flag", "1"}, "--no-such-flag");
            if (!files)
                refused({"--direct"}, "--direct"); // the files job's alone
            refused({"--block-kind", "disk"}, "--block-kind");
            refused({"--block-kind", "pread"}, "--block-file"); // pread and mmap read a file
            refused({"--block-kind", "mmap"}, "--block-file");
            refused({"--block-kind", "pread", "--block-file", "/no/such/file"}, "--block-file");
            refused({"--block-fix", "ring"}, "--block-fix"); // the ring reads a file: not a sleep
        }
    }
}
