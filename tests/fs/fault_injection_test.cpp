// SPDX-License-Identifier: MIT
// Files under the fault-injection mode: short reads and writes on regular files only, EIO only
// when asked, and the library absorbing every transient kind.
#include <corio/runtime/io_context.hpp>

#include <corio/fs/file.hpp>
#include <corio/runtime/sync_wait.hpp>
#include "tests/fs/temp_dir.hpp"
#include "tests/support/faults.hpp"
#include "tests/support/pipe.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <span>
#include <string>
#include <system_error>

using namespace corio;
using corio::test::with_faults;
using corio::test::pattern;
using corio::test::pipe_pair;
using corio::test::read_plain;
using corio::test::temp_dir;
using corio::test::write_plain;

namespace {

std::span<std::byte> writable(std::string& s) {
    return std::as_writable_bytes(std::span(s));
}

struct read_report {
    int reads = 0;        // read_some_at calls
    int short_ones = 0;   // of those, the ones that returned less than was left in the file
    std::string contents; // what they read, in order
};

task<read_report> read_some_everything(std::string path, std::size_t size) {
    result<file> opened = co_await file::open(path);
    file f = std::move(opened.value());
    read_report out;
    out.contents.assign(size, '\0');
    std::size_t done = 0;
    while (done < size) {
        result<std::size_t> n = co_await f.read_some_at(writable(out.contents).subspan(done), done);
        REQUIRE(n.has_value());
        REQUIRE(*n > 0);
        ++out.reads;
        out.short_ones += *n < size - done ? 1 : 0;
        done += *n;
    }
    result<void> closed = co_await f.close();
    closed.value();
    co_return out;
}

task<std::string> write_all_then_read_exact(std::string path, std::string bytes) {
    result<file> created = co_await file::create(path);
    file out = std::move(created.value());
    result<std::size_t> written = co_await out.write_all_at(bytes, 0);
    REQUIRE(written.has_value());
    CHECK(*written == bytes.size());
    result<void> closed = co_await out.close();
    closed.value();
    result<file> opened = co_await file::open(path);
    file in = std::move(opened.value());
    std::string back(bytes.size(), '\0');
    result<std::size_t> got = co_await in.read_exact_at(writable(back), 0);
    REQUIRE(got.has_value());
    CHECK(*got == bytes.size());
    result<void> closed_in = co_await in.close();
    closed_in.value();
    co_return back;
}

task<std::error_code> read_once(std::string path) {
    result<file> opened = co_await file::open(path);
    file f = std::move(opened.value());
    std::string buffer(100, '\0');
    result<std::size_t> n = co_await f.read_some_at(writable(buffer), 0);
    result<void> closed = co_await f.close();
    closed.value();
    co_return n ? std::error_code() : n.error();
}

task<std::size_t> read_pipe_once(int fd) {
    file f(::dup(fd));
    std::string buffer(100, '\0');
    result<std::size_t> n = co_await f.read_some(writable(buffer));
    result<void> closed = co_await f.close();
    closed.value();
    co_return n.value();
}


/// What a file transfer cut by an injected EIO reported, and what the file or buffer holds.
struct cut_report {
    std::error_code error;       // what the op failed with (empty: it finished)
    std::size_t transferred = 0; // what transferred() said
    std::size_t on_disk = 0;     // writes: the file's size afterwards
    bool intact = false;         // the bytes that moved are the right ones
};

task<cut_report> write_all_cut(std::string path, std::string bytes) {
    result<file> created = co_await file::create(path);
    file out = std::move(created.value());
    transfer_result n = co_await out.write_all_at(bytes, 0);
    result<void> closed = co_await out.close();
    closed.value();
    cut_report r;
    r.error = n.error();
    r.transferred = n.transferred();
    std::string stored = read_plain(path);
    r.on_disk = stored.size();
    r.intact = stored == bytes.substr(0, stored.size());
    co_return r;
}

task<cut_report> read_exact_cut(std::string path, std::string bytes) {
    result<file> opened = co_await file::open(path);
    file in = std::move(opened.value());
    std::string back(bytes.size(), '\0');
    transfer_result n = co_await in.read_exact_at(writable(back), 0);
    result<void> closed = co_await in.close();
    closed.value();
    cut_report r;
    r.error = n.error();
    r.transferred = n.transferred();
    r.intact = back.substr(0, n.transferred()) == bytes.substr(0, n.transferred());
    co_return r;
}
} // namespace

TEST_CASE("kinds=short at rate 1: every read_some_at of a regular file is short") {
    temp_dir dir;
    std::string bytes = pattern(100'000, 3);
    write_plain(dir / "f", bytes);
    io_context ctx(with_faults("seed=8,rate=1,kinds=short"));
    read_report r = sync_wait(ctx, read_some_everything(dir / "f", bytes.size()));
    CHECK(r.contents == bytes);
    CHECK(r.reads > 1);
    CHECK(r.short_ones >= r.reads - 1); // only a 1-byte read cannot be shorter
}

TEST_CASE("kinds=short at rate 1: write_all_at and read_exact_at still move every byte") {
    temp_dir dir;
    std::string bytes = pattern(300'000, 4);
    io_context ctx(with_faults("seed=9,rate=1,kinds=short"));
    std::string back = sync_wait(ctx, write_all_then_read_exact(dir / "f", bytes));
    CHECK(back == bytes);
    CHECK(read_plain(dir / "f") == bytes);
    CHECK(ctx.stats().faults_injected > 2);
}

TEST_CASE("write_all_at cut by EIO midway reports exactly the bytes the file received") {
    temp_dir dir;
    std::string bytes = pattern(64 * 1024, 6);
    int cut_midway = 0;
    for (int seed = 1; seed <= 12; ++seed) {
        std::string spec = "seed=" + std::to_string(seed) + ",rate=0.5,kinds=short+eio";
        io_context ctx(with_faults(spec.c_str()));
        cut_report r = sync_wait(ctx, write_all_cut(dir / "w", bytes));
        CAPTURE(spec);
        CHECK(r.transferred == r.on_disk);
        CHECK(r.intact);
        if (r.error) {
            CHECK(r.error == std::errc::io_error);
            cut_midway += r.transferred > 0 ? 1 : 0;
        } else {
            CHECK(r.transferred == bytes.size());
        }
    }
    CHECK(cut_midway > 0);
}

TEST_CASE("read_exact_at cut by EIO midway reports exactly the bytes in the buffer") {
    temp_dir dir;
    std::string bytes = pattern(64 * 1024, 7);
    write_plain(dir / "r", bytes);
    int cut_midway = 0;
    for (int seed = 1; seed <= 12; ++seed) {
        std::string spec = "seed=" + std::to_string(seed) + ",rate=0.5,kinds=short+eio";
        io_context ctx(with_faults(spec.c_str()));
        cut_report r = sync_wait(ctx, read_exact_cut(dir / "r", bytes));
        CAPTURE(spec);
        CHECK(r.intact);
        if (r.error) {
            CHECK(r.error == std::errc::io_error);
            CHECK(r.transferred < bytes.size());
            cut_midway += r.transferred > 0 ? 1 : 0;
        } else {
            CHECK(r.transferred == bytes.size());
        }
    }
    CHECK(cut_midway > 0);
}

TEST_CASE("kinds=eio: a read of a regular file ends with EIO from a NOP") {
    temp_dir dir;
    write_plain(dir / "f", "contents");
    io_context ctx(with_faults("seed=10,rate=1,kinds=eio"));
    std::error_code e = sync_wait(ctx, read_once(dir / "f"));
    CHECK(e == std::errc::io_error);
    CHECK(ctx.stats().faults_injected == 1); // the read only: open and close get no EIO
}

TEST_CASE("pipes are never shortened") {
    pipe_pair p;
    REQUIRE(::write(p.write_end, "0123456789", 10) == 10);
    io_context ctx(with_faults("seed=11,rate=1,kinds=short"));
    std::size_t n = sync_wait(ctx, read_pipe_once(p.read_end));
    CHECK(n == 10);
    CHECK(ctx.stats().faults_injected == 0);
}

TEST_CASE("kinds=eintr at rate 1: open, reads and writes never show EINTR to the caller") {
    temp_dir dir;
    std::string bytes = pattern(200'000, 5);
    io_context ctx(with_faults("seed=12,rate=1,kinds=eintr"));
    std::string back = sync_wait(ctx, write_all_then_read_exact(dir / "f", bytes));
    CHECK(back == bytes);
    read_report r = sync_wait(ctx, read_some_everything(dir / "f", bytes.size()));
    CHECK(r.contents == bytes);
    io_context_stats st = ctx.stats();
    CHECK(st.faults_injected >= 6); // two opens, a write, a read_exact, read_some...
    CHECK(st.restarts == st.faults_injected);
    CHECK(st.ops_in_flight == 0);
}
