// SPDX-License-Identifier: MIT
#include <corio/fs/file.hpp>

#include <corio/fs/aligned_buffer.hpp>
#include <corio/fs/fs_error.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_all.hpp>
#include <corio/runtime/when_any.hpp>
#include "tests/fs/temp_dir.hpp"
#include "tests/support/pipe.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;
using corio::test::pattern;
using corio::test::temp_dir;

namespace {

std::span<std::byte> writable(std::string& s) {
    return std::as_writable_bytes(std::span(s));
}

/// Creates `path` with `bytes` through the ring, reads it back with read_exact_at, closes.
task<std::string> round_trip(std::string path, std::string bytes) {
    result<file> created = co_await file::create(path);
    file out = std::move(created.value());
    result<std::size_t> written = co_await out.write_all_at(bytes, 0);
    CHECK(written.value() == bytes.size());
    result<void> closed = co_await out.close();
    closed.value();

    result<file> opened = co_await file::open(path);
    file in = std::move(opened.value());
    std::string back(bytes.size(), '\0');
    result<std::size_t> got = co_await in.read_exact_at(writable(back), 0);
    CHECK(got.value() == bytes.size());
    // One byte more is end of file: a some-read there returns 0.
    char extra = 0;
    result<std::size_t> eof =
        co_await in.read_some_at(std::as_writable_bytes(std::span(&extra, 1)), bytes.size());
    CHECK(eof.value() == 0);
    result<void> closed_in = co_await in.close();
    closed_in.value();
    co_return back;
}

task<transfer_result> read_exact_from(std::string path, std::size_t size, std::uint64_t at) {
    result<file> opened = co_await file::open(path);
    file in = std::move(opened.value());
    std::string buffer(size, '\0');
    transfer_result got = co_await in.read_exact_at(writable(buffer), at);
    co_return got;
}

task<result<std::size_t>> read_until_eof(std::string path, std::size_t size, std::uint64_t at,
                                         std::string* out) {
    result<file> opened = co_await file::open(path);
    file in = std::move(opened.value());
    out->assign(size, '\0');
    result<std::size_t> got = co_await in.read_at(writable(*out), at);
    co_return got;
}

task<result<file>> open_missing(std::string path) {
    result<file> r = co_await file::open(path);
    co_return r;
}

struct sparse_outcome {
    std::uint64_t size = 0;
    std::uint64_t blocks = 0;
    char byte = 0;
    std::string before; // the 4 bytes just before the written one (a hole reads as zeros)
};

task<sparse_outcome> write_past_5_gib(std::string path, std::uint64_t offset) {
    result<file> created = co_await file::create(path);
    file f = std::move(created.value());
    result<std::size_t> w = co_await f.write_some_at(std::string_view("Z"), offset);
    CHECK(w.value() == 1);
    result<void> closed = co_await f.close();
    closed.value();

    result<file> opened = co_await file::open(path);
    file in = std::move(opened.value());
    sparse_outcome out;
    result<file_status> st = co_await in.statx(STATX_SIZE | STATX_BLOCKS);
    out.size = st.value().stx_size;
    out.blocks = st.value().stx_blocks;
    std::string around(5, '?');
    result<std::size_t> got = co_await in.read_exact_at(writable(around), offset - 4);
    CHECK(got.value() == 5);
    out.before = around.substr(0, 4);
    out.byte = around[4];
    co_return out;
}

task<std::string> vectored_round_trip(std::string path) {
    result<file> created = co_await file::open(path, O_RDWR | O_CREAT | O_TRUNC);
    file f = std::move(created.value());
    std::string a = "alpha-", b = "beta-", c = "gamma";
    iovec out_vec[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    result<std::size_t> w = co_await f.writev_all_at(out_vec, 10);
    CHECK(w.value() == 16);
    std::string x(3, '\0'), y(13, '\0');
    iovec in_vec[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
    result<std::size_t> r = co_await f.readv_exact_at(in_vec, 10);
    CHECK(r.value() == 16);
    std::string scattered = x + "|" + y;
    std::string z(4, '\0');
    iovec past_end[2] = {{x.data(), x.size()}, {z.data(), z.size()}}; // 7 wanted, 6 left
    transfer_result eof = co_await f.readv_exact_at(past_end, 20);
    CHECK(eof.error() == io_errc::eof);
    CHECK(eof.transferred() == 6);
    CHECK(x + z == std::string("-gamma") + '\0');
    co_return scattered;
}

task<std::uint64_t> size_after_fallocate(std::string path, int mode, std::uint64_t length) {
    result<file> created = co_await file::create(path);
    file f = std::move(created.value());
    result<void> fa = co_await f.fallocate(0, length, mode);
    fa.value();
    result<file_status> st = co_await f.statx(STATX_SIZE);
    co_return st.value().stx_size;
}

task<bool> write_and_sync(std::string path) {
    result<file> created = co_await file::create(path);
    file f = std::move(created.value());
    result<std::size_t> w = co_await f.write_all_at(std::string_view("durable"), 0);
    result<void> s1 = co_await f.fdatasync();
    result<void> s2 = co_await f.fsync();
    co_return w.has_value() && s1.has_value() && s2.has_value();
}

task<int> close_through_ring(std::string path) {
    result<file> opened = co_await file::open(path);
    file f = std::move(opened.value());
    int fd = f.native_handle();
    result<void> closed = co_await f.close();
    closed.value();
    CHECK_FALSE(f.is_open());
    result<void> again = co_await f.close();
    CHECK(again == std::errc::bad_file_descriptor);
    co_return fd;
}

task<int> open_fd(std::string path) {
    result<file> opened = co_await file::open(path);
    file f = std::move(opened.value());
    co_return f.release();
}

task<std::string> open_relative(int dir_fd, std::string name) {
    result<file> opened = co_await file::open_at(dir_fd, name);
    file f = std::move(opened.value());
    std::string data(5, '\0');
    result<std::size_t> got = co_await f.read_at(writable(data), 0);
    data.resize(got.value());
    co_return data;
}

/// Opens `name` beneath `dir_fd` and reads up to 16 bytes of it, or returns the open's error.
task<result<std::string>> read_beneath(int dir_fd, std::string name, std::uint64_t resolve) {
    result<file> opened = co_await file::open_beneath(dir_fd, name, O_RDONLY, resolve);
    if (!opened)
        co_return opened.error();
    file f = std::move(*opened);
    std::string data(16, '\0');
    result<std::size_t> got = co_await f.read_at(writable(data), 0);
    data.resize(got.value());
    co_return data;
}

/// A read_exact_at on a pipe (offsets are ignored for streams): completes partially first, so
/// the op loops inside the ring without waking the task.
task<result<std::size_t>> read_exact_pipe(int fd, std::string* out) {
    file f(fd);
    out->assign(10, '\0');
    result<std::size_t> r = co_await f.read_exact_at(writable(*out), 0);
    (void)f.release(); // the pipe_pair owns the descriptor
    co_return r;
}

task<void> write_later(int fd, std::string text) {
    auto nop_yield = co_await corio::nop();
    (void)nop_yield;
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

task<result<std::size_t>> loops_over_partial(int read_fd, int write_fd, std::string* out) {
    auto both = when_all(read_exact_pipe(read_fd, out), write_later(write_fd, "456789"));
    auto [r, done] = co_await both;
    (void)done;
    co_return r;
}

task<result<std::size_t>> exact_with_deadline(int fd, std::string* out) {
    result<std::size_t> r = co_await timeout(read_exact_pipe(fd, out), 20ms);
    co_return r;
}

task<std::string> through_a_pipe(int read_fd, int write_fd) {
    file in(read_fd), out(write_fd);
    std::string text = pattern(3000, 31);
    result<std::size_t> w = co_await out.write_all(std::as_bytes(std::span(text)));
    CHECK(w.value() == 3000);
    std::string got(4000, '\0');
    result<std::size_t> r = co_await in.read_some(writable(got));
    got.resize(r.value());
    (void)in.release(); // the pipe_pair owns both descriptors
    (void)out.release();
    co_return got == text ? "same" : "different";
}

task<void> append_twice(std::string path) {
    result<file> opened = co_await file::open(path, O_WRONLY | O_APPEND);
    file f = std::move(opened.value());
    result<std::size_t> a = co_await f.write_all(std::as_bytes(std::span("-one", 4)));
    result<std::size_t> b = co_await f.write_some(std::as_bytes(std::span("-two", 4)));
    CHECK(a.value() == 4);
    REQUIRE(b.value() >= 1);
    if (*b < 4) { // a single write may be short (always allowed; common under CORIO_FAULTS)
        result<std::size_t> rest =
            co_await f.write_all(std::as_bytes(std::span("-two", 4)).subspan(*b));
        CHECK(rest.value() == 4 - *b);
    }
}

task<result<std::size_t>> read_some_with_deadline(int fd, std::size_t size) {
    file f(fd);
    std::string buffer(size, '\0');
    auto read = with_timeout(f.read_some_at(writable(buffer), 0), 10ms);
    result<std::size_t> r = co_await read;
    (void)f.release(); // owned by the pipe_pair
    co_return r;
}

task<result<std::size_t>> misaligned_with_deadline(std::string path) {
    result<file> opened = co_await file::open(path, O_RDONLY | O_DIRECT);
    if (!opened)
        co_return opened.error();
    file f = std::move(*opened);
    aligned_buffer buffer(4096);
    auto read = with_timeout(f.read_some_at(buffer.span().first(100), 0), 1s);
    result<std::size_t> r = co_await read;
    co_return r;
}

// The loops hide their SQE machinery: with_timeout(), which drives exactly one SQE, cannot be
// handed one (it would stop after the first partial completion). Use timeout(task) for loops.
static_assert(!std::is_convertible_v<read_exact_op*, detail::io_op*>);
static_assert(!std::is_convertible_v<write_all_op*, detail::io_op*>);
static_assert(std::is_convertible_v<read_op*, detail::io_op*>);

task<std::size_t> exact_reads(std::vector<int> fds, std::vector<std::string>* outs) {
    std::vector<task<result<std::size_t>>> reads;
    for (std::size_t i = 0; i < fds.size(); ++i)
        reads.push_back(read_exact_pipe(fds[i], &(*outs)[i]));
    auto all = when_all(std::move(reads));
    std::vector<result<std::size_t>> done = co_await all;
    std::size_t full = 0;
    for (const result<std::size_t>& r : done)
        full += (r && *r == 10) ? 1 : 0;
    co_return full;
}

task<void> later_writes(std::vector<int> fds) {
    std::vector<task<void>> writes;
    for (int fd : fds)
        writes.push_back(write_later(fd, "456789"));
    auto all = when_all(std::move(writes));
    co_await all;
}

/// Every read completes partially in the same turn, more than the SQ holds, so the loops'
/// resubmissions overflow the SQ (get_sqe flushes it) - outside the CQE iteration.
task<std::size_t> many_partial_loops(std::vector<int> read_fds, std::vector<int> write_fds,
                                     std::vector<std::string>* outs) {
    auto both =
        when_all(exact_reads(std::move(read_fds), outs), later_writes(std::move(write_fds)));
    auto [full, done] = co_await both;
    (void)done;
    co_return full;
}

// ----- O_DIRECT -----

struct direct_outcome {
    result<file> opened = std::errc::invalid_argument;
    result<std::size_t> aligned_write = std::errc::invalid_argument;
    result<std::size_t> aligned_read = std::errc::invalid_argument;
    result<std::size_t> misaligned_buffer = std::errc::invalid_argument;
    result<std::size_t> misaligned_offset = std::errc::invalid_argument;
    result<std::size_t> misaligned_length = std::errc::invalid_argument;
    result<std::size_t> misaligned_vector = std::errc::invalid_argument;
    std::uint64_t submitted_by_misaligned = 0;
    bool read_matches = false;
};

task<void> direct_io(std::string path, io_context* ctx, direct_outcome* out) {
    out->opened = co_await file::open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT);
    if (!out->opened)
        co_return;
    file& f = *out->opened;
    aligned_buffer block(8192);
    std::string bytes = pattern(8192, 7);
    std::memcpy(block.data(), bytes.data(), bytes.size());
    out->aligned_write = co_await f.write_all_at(block.span(), 4096);
    aligned_buffer back(8192);
    out->aligned_read = co_await f.read_exact_at(back.span(), 4096);
    out->read_matches = std::memcmp(back.data(), bytes.data(), bytes.size()) == 0;

    std::uint64_t before = ctx->stats().submitted + io_uring_sq_ready(ctx->native_handle());
    out->misaligned_buffer = co_await f.read_some_at(back.span().subspan(1, 4096), 0);
    out->misaligned_offset = co_await f.read_some_at(back.span().first(4096), 100);
    out->misaligned_length = co_await f.write_some_at(block.span().first(1000), 0);
    iovec vec[2] = {{block.data(), 4096}, {block.data() + 4096, 512}};
    out->misaligned_vector = co_await f.writev_some_at(vec, 0);
    out->submitted_by_misaligned =
        ctx->stats().submitted + io_uring_sq_ready(ctx->native_handle()) - before;
    result<void> closed = co_await f.close();
    closed.value();
}

} // namespace

TEST_CASE("files of 0, 1, 4095, 4096 and 4097 bytes round trip byte for byte") {
    temp_dir dir;
    for (std::size_t size : {0u, 1u, 4095u, 4096u, 4097u}) {
        CAPTURE(size);
        std::string bytes = pattern(size, static_cast<unsigned>(size));
        std::string path = dir / ("f" + std::to_string(size));
        std::string back = sync_wait(round_trip(path, bytes));
        CHECK(back == bytes);
        CHECK(test::read_plain(path) == bytes); // what the kernel stored, read without corio
    }
}

TEST_CASE("read_exact_at that reaches end of file first reports io_errc::eof and the bytes read") {
    temp_dir dir;
    test::write_plain(dir / "short", pattern(100));
    transfer_result r = sync_wait(read_exact_from(dir / "short", 101, 0));
    CHECK(r.error() == io_errc::eof);
    CHECK(r.error().category() == io_category());
    CHECK(r.error().message() == "end of stream before the requested number of bytes");
    CHECK(r.transferred() == 100);
    transfer_result middle = sync_wait(read_exact_from(dir / "short", 50, 70));
    CHECK(middle.error() == io_errc::eof);
    CHECK(middle.transferred() == 30);
    transfer_result past = sync_wait(read_exact_from(dir / "short", 1, 100));
    CHECK(past.error() == io_errc::eof);
    CHECK(past.transferred() == 0);
    transfer_result whole = sync_wait(read_exact_from(dir / "short", 100, 0));
    CHECK(whole.value() == 100);
    CHECK(whole.transferred() == 100);
}

TEST_CASE("read_at stops at end of file and reports the bytes it read") {
    temp_dir dir;
    std::string bytes = pattern(5000, 3);
    test::write_plain(dir / "f", bytes);
    std::string out;
    result<std::size_t> r = sync_wait(read_until_eof(dir / "f", 8192, 1000, &out));
    CHECK(r.value() == 4000);
    CHECK(out.substr(0, 4000) == bytes.substr(1000));
}

TEST_CASE("opening a missing file gives errc::no_such_file_or_directory") {
    temp_dir dir;
    result<file> r = sync_wait(open_missing(dir / "missing"));
    CHECK(r == std::errc::no_such_file_or_directory);
}

TEST_CASE("a byte written past 5 GiB into a sparse file reads back, with zeros before it") {
    temp_dir dir;
    const std::uint64_t offset = (5ull << 30) + 12345; // beyond any 32-bit offset
    sparse_outcome out = sync_wait(write_past_5_gib(dir / "sparse", offset));
    CHECK(out.size == offset + 1);
    CHECK(out.byte == 'Z');
    CHECK(out.before == std::string(4, '\0'));
    CHECK(out.blocks < 64); // a few KiB allocated, not 5 GiB: the file is sparse
}

TEST_CASE("vectored writes gather and vectored reads scatter, in order") {
    temp_dir dir;
    CHECK(sync_wait(vectored_round_trip(dir / "v")) == "alp|ha-beta-gamma");
    std::string stored = test::read_plain(dir / "v");
    CHECK(stored == std::string(10, '\0') + "alpha-beta-gamma");
}

TEST_CASE("fallocate extends the size, and with FALLOC_FL_KEEP_SIZE it does not") {
    temp_dir dir;
    CHECK(sync_wait(size_after_fallocate(dir / "a", 0, 1 << 20)) == 1u << 20);
    CHECK(sync_wait(size_after_fallocate(dir / "b", FALLOC_FL_KEEP_SIZE, 1 << 20)) == 0);
}

TEST_CASE("fsync and fdatasync of a written file succeed") {
    temp_dir dir;
    CHECK(sync_wait(write_and_sync(dir / "d")));
    CHECK(test::read_plain(dir / "d") == "durable");
}

TEST_CASE("close through the ring closes the descriptor, and a second close is EBADF") {
    temp_dir dir;
    test::write_plain(dir / "c", "x");
    int fd = sync_wait(close_through_ring(dir / "c"));
    CHECK_FALSE(test::is_open_fd(fd));
}

TEST_CASE("a file destroyed while open closes its descriptor synchronously") {
    temp_dir dir;
    test::write_plain(dir / "c", "x");
    int fd = sync_wait(open_fd(dir / "c"));
    REQUIRE(test::is_open_fd(fd));
    { file adopted(fd); }
    CHECK_FALSE(test::is_open_fd(fd));
}

TEST_CASE("a close op that is never awaited still closes the descriptor") {
    temp_dir dir;
    test::write_plain(dir / "c", "x");
    int fd = sync_wait(open_fd(dir / "c"));
    file adopted(fd);
    { close_op dropped = adopted.close(); }
    CHECK_FALSE(adopted.is_open());
    CHECK_FALSE(test::is_open_fd(fd));
}

TEST_CASE("open_at opens a path relative to a directory descriptor") {
    temp_dir dir;
    test::write_plain(dir / "rel", "hello");
    int dir_fd = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(dir_fd >= 0);
    CHECK(sync_wait(open_relative(dir_fd, "rel")) == "hello");
    ::close(dir_fd);
}

TEST_CASE("open_beneath opens inside the directory and refuses every way out with EXDEV") {
    temp_dir outside;
    test::write_plain(outside / "secret", "outside");
    temp_dir root;
    test::write_plain(root / "inside", "inside");
    REQUIRE(::mkdir((root / "sub").c_str(), 0755) == 0);
    test::write_plain(root / "sub/file", "nested");
    REQUIRE(::symlink((outside / "secret").c_str(), (root / "abs_link").c_str()) == 0);
    REQUIRE(::symlink("../inside", (root / "sub/up_link").c_str()) == 0);
    REQUIRE(::symlink("../../../../../../../../etc/passwd", (root / "rel_escape").c_str()) == 0);
    int root_fd = ::open(root.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(root_fd >= 0);
    const std::uint64_t jail = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

    io_context ctx;
    CHECK(sync_wait(ctx, read_beneath(root_fd, "inside", jail)).value() == "inside");
    CHECK(sync_wait(ctx, read_beneath(root_fd, "sub/../sub/file", jail)).value() == "nested");
    // A symlink whose target stays inside the directory is followed.
    CHECK(sync_wait(ctx, read_beneath(root_fd, "sub/up_link", jail)).value() == "inside");
    CHECK(sync_wait(ctx, read_beneath(root_fd, "../secret", jail)) == std::errc::cross_device_link);
    CHECK(sync_wait(ctx, read_beneath(root_fd, "sub/../../x", jail)) ==
          std::errc::cross_device_link);
    CHECK(sync_wait(ctx, read_beneath(root_fd, outside / "secret", jail)) ==
          std::errc::cross_device_link);
    CHECK(sync_wait(ctx, read_beneath(root_fd, "abs_link", jail)) == std::errc::cross_device_link);
    CHECK(sync_wait(ctx, read_beneath(root_fd, "rel_escape", jail)) ==
          std::errc::cross_device_link);
    CHECK(sync_wait(ctx, read_beneath(root_fd, "missing", jail)) ==
          std::errc::no_such_file_or_directory);
    // RESOLVE_NO_SYMLINKS refuses even the harmless link.
    CHECK(sync_wait(ctx, read_beneath(root_fd, "sub/up_link", jail | RESOLVE_NO_SYMLINKS)) ==
          std::errc::too_many_symbolic_link_levels);
    CHECK(ctx.stats().ops_in_flight == 0);
    ::close(root_fd);
}

TEST_CASE("read_exact_at keeps reading after a partial completion until the buffer is full") {
    test::pipe_pair pipe;
    REQUIRE(::write(pipe.write_end, "0123", 4) == 4);
    std::string out;
    io_context ctx;
    result<std::size_t> r = sync_wait(ctx, loops_over_partial(pipe.read_end, pipe.write_end, &out));
    CHECK(r.value() == 10);
    CHECK(out == "0123456789");
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("cancelling a read_exact_at loop ends it with the cancellation, nothing left in flight") {
    test::pipe_pair pipe;
    REQUIRE(::write(pipe.write_end, "0123", 4) == 4);
    std::string out;
    io_context ctx;
    result<std::size_t> r = sync_wait(ctx, exact_with_deadline(pipe.read_end, &out));
    CHECK(r == std::errc::timed_out);
    CHECK(out.substr(0, 4) == "0123");
    CHECK(ctx.stats().ops_in_flight == 0);
}

TEST_CASE("O_DIRECT: aligned I/O works; misaligned buffer, offset or length is refused clearly") {
    temp_dir dir;
    io_context ctx;
    direct_outcome out;
    sync_wait(ctx, direct_io(dir / "direct", &ctx, &out));
    if (!out.opened) {
        // The filesystem refuses O_DIRECT (tmpfs, some overlays): the kernel's EINVAL arrives as
        // a value, and that is all there is to check here.
        CHECK(out.opened == std::errc::invalid_argument);
        MESSAGE("O_DIRECT unsupported in " << dir.path() << ": " << out.opened.error().message());
        return;
    }
    CHECK(out.aligned_write.value() == 8192);
    CHECK(out.aligned_read.value() == 8192);
    CHECK(out.read_matches);
    for (const result<std::size_t>* r : {&out.misaligned_buffer, &out.misaligned_offset,
                                         &out.misaligned_length, &out.misaligned_vector}) {
        CHECK(r->error() == fs_errc::misaligned_direct_io);
        CHECK(*r == std::errc::invalid_argument);
        CHECK(r->error().message().find("O_DIRECT") != std::string::npos);
    }
    CHECK(out.submitted_by_misaligned == 0); // refused before the ring saw anything
}

TEST_CASE("write_all and read_some at the file position work on a pipe") {
    test::pipe_pair pipe;
    CHECK(sync_wait(through_a_pipe(pipe.read_end, pipe.write_end)) == "same");
}

TEST_CASE("writes at the file position on an O_APPEND file append in order") {
    temp_dir dir;
    test::write_plain(dir / "log", "start");
    sync_wait(append_twice(dir / "log"));
    CHECK(test::read_plain(dir / "log") == "start-one-two");
}

TEST_CASE("with_timeout works on a single read: a pipe without data times out") {
    test::pipe_pair pipe;
    io_context ctx;
    result<std::size_t> r = sync_wait(ctx, read_some_with_deadline(pipe.read_end, 8));
    CHECK(r == std::errc::timed_out);
    CHECK(ctx.stats().ops_in_flight == 0);
    REQUIRE(::write(pipe.write_end, "abc", 3) == 3);
    result<std::size_t> got = sync_wait(read_some_with_deadline(pipe.read_end, 8));
    CHECK(got.value() == 3);
}

TEST_CASE("with_timeout on a misaligned O_DIRECT read still reports the clear error") {
    temp_dir dir;
    test::write_plain(dir / "f", pattern(8192));
    result<std::size_t> r = sync_wait(misaligned_with_deadline(dir / "f"));
    if (r == std::errc::invalid_argument && r.error().category() == std::system_category()) {
        MESSAGE("O_DIRECT unsupported in " << dir.path());
        return;
    }
    CHECK(r.error() == fs_errc::misaligned_direct_io);
}

TEST_CASE("32 loops that all continue in one turn on a 4-entry SQ all finish with every byte") {
    constexpr std::size_t n = 32;
    std::vector<test::pipe_pair> pipes(n);
    std::vector<int> read_fds, write_fds;
    for (test::pipe_pair& p : pipes) {
        REQUIRE(::write(p.write_end, "0123", 4) == 4);
        read_fds.push_back(p.read_end);
        write_fds.push_back(p.write_end);
    }
    io_context_options options;
    options.sq_entries = 4;
    io_context ctx(options);
    std::vector<std::string> outs(n);
    CHECK(sync_wait(ctx, many_partial_loops(read_fds, write_fds, &outs)) == n);
    for (const std::string& out : outs)
        CHECK(out == "0123456789");
    CHECK(ctx.stats().sq_full_flushes > 0);
    CHECK(ctx.stats().ops_in_flight == 0);
}
