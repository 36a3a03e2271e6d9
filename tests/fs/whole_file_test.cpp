// SPDX-License-Identifier: MIT
#include <corio/fs/whole_file.hpp>

#include <corio/fs/fs_error.hpp>
#include <corio/runtime/sync_wait.hpp>
#include "tests/fs/temp_dir.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <string>

using namespace corio;
using corio::test::exists;
using corio::test::pattern;
using corio::test::temp_dir;

namespace {

task<result<void>> write_atomically(std::string path, std::string contents) {
    result<void> r = co_await write_file_atomically(std::move(path), std::move(contents));
    co_return r;
}

task<result<void>> write_then_crash(std::string path, std::string contents) {
    write_file_options options;
    options.crash_before_rename = true;
    result<void> r = co_await write_file_atomically(std::move(path), std::move(contents), options);
    co_return r;
}

task<result<std::uint64_t>> copy_with(std::string src, std::string dst, std::size_t chunk,
                                      unsigned in_flight) {
    copy_file_options options;
    options.chunk_size = chunk;
    options.reads_in_flight = in_flight;
    result<std::uint64_t> r = co_await copy_file(std::move(src), std::move(dst), options);
    co_return r;
}

mode_t permissions(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

} // namespace

TEST_CASE("read_file returns every byte of files of 0, 1, 4095, 4096, 4097 bytes and 1 MiB+3") {
    temp_dir dir;
    for (std::size_t size : {0u, 1u, 4095u, 4096u, 4097u, (1u << 20) + 3}) {
        CAPTURE(size);
        std::string bytes = pattern(size, static_cast<unsigned>(size) + 11);
        test::write_plain(dir / "f", bytes);
        result<std::string> r = sync_wait(read_file(dir / "f"));
        CHECK(r.value() == bytes);
    }
}

TEST_CASE("read_file reads a file whose statx size is 0 but which has content (procfs)") {
    result<std::string> r = sync_wait(read_file("/proc/self/status"));
    REQUIRE(r.has_value());
    CHECK(r->rfind("Name:", 0) == 0);
    CHECK(r->find("VmRSS") != std::string::npos);
}

TEST_CASE("read_file reports errors as values") {
    temp_dir dir;
    CHECK(sync_wait(read_file(dir / "missing")) == std::errc::no_such_file_or_directory);
    CHECK(sync_wait(read_file(dir.path())) == std::errc::is_a_directory);
}

TEST_CASE("write_file_atomically creates a file, then replaces it, leaving no temp file") {
    temp_dir dir;
    std::string path = dir / "config";
    CHECK(sync_wait(write_atomically(path, "version 1")).has_value());
    CHECK(test::read_plain(path) == "version 1");
    std::string big = pattern(300000, 5);
    CHECK(sync_wait(write_atomically(path, big)).has_value());
    CHECK(test::read_plain(path) == big);
    CHECK_FALSE(exists(atomic_temp_path(path)));
    CHECK(atomic_temp_path(path) == dir / ".config.corio-tmp");
    CHECK(atomic_temp_path("plain") == ".plain.corio-tmp");
}

TEST_CASE("a crash between the temp file's fsync and the rename leaves the old content intact, "
          "and the next write reclaims the temp file") {
    temp_dir dir;
    std::string path = dir / "state";
    test::write_plain(path, "old content");
    result<void> crashed = sync_wait(write_then_crash(path, "new content that never landed"));
    CHECK(crashed.error() == fs_errc::simulated_crash);
    CHECK(crashed == std::errc::operation_canceled);
    CHECK(test::read_plain(path) == "old content");
    REQUIRE(exists(atomic_temp_path(path)));
    CHECK(test::read_plain(atomic_temp_path(path)) == "new content that never landed");

    CHECK(sync_wait(write_atomically(path, "short")).has_value());
    CHECK(test::read_plain(path) == "short"); // not a mix with the longer leftover
    CHECK_FALSE(exists(atomic_temp_path(path)));
}

TEST_CASE("write_file_atomically into a missing directory fails and creates nothing") {
    temp_dir dir;
    CHECK(sync_wait(write_atomically(dir / "no/such/file", "x")) ==
          std::errc::no_such_file_or_directory);
    CHECK_FALSE(exists(dir / "no"));
}

TEST_CASE("copy_file of a 3 MiB + 1 byte file produces an identical file with its mode") {
    temp_dir dir;
    std::string bytes = pattern((3u << 20) + 1, 9);
    test::write_plain(dir / "src", bytes);
    REQUIRE(::chmod((dir / "src").c_str(), 0640) == 0);
    result<std::uint64_t> r = sync_wait(copy_file(dir / "src", dir / "dst"));
    CHECK(r.value() == bytes.size());
    CHECK(test::read_plain(dir / "dst") == bytes);
    mode_t mask = ::umask(0);
    ::umask(mask);
    CHECK(permissions(dir / "dst") == (0640 & ~mask));
}

TEST_CASE("copy_file with odd chunk sizes and depths copies every byte and truncates the target") {
    temp_dir dir;
    std::string bytes = pattern(100001, 4);
    test::write_plain(dir / "src", bytes);
    for (unsigned depth : {1u, 3u, 8u}) {
        CAPTURE(depth);
        test::write_plain(dir / "dst", pattern(200000, 1)); // longer: must be truncated
        result<std::uint64_t> r = sync_wait(copy_with(dir / "src", dir / "dst", 4097, depth));
        CHECK(r.value() == bytes.size());
        CHECK(test::read_plain(dir / "dst") == bytes);
    }
}

TEST_CASE("copy_file of an empty file creates an empty file") {
    temp_dir dir;
    test::write_plain(dir / "src", "");
    CHECK(sync_wait(copy_file(dir / "src", dir / "dst")).value() == 0);
    CHECK(exists(dir / "dst"));
    CHECK(test::read_plain(dir / "dst").empty());
}

TEST_CASE("copy_file refuses to copy a file onto itself and reports a missing source") {
    temp_dir dir;
    test::write_plain(dir / "f", "keep me");
    CHECK(sync_wait(copy_file(dir / "f", dir / "f")) == std::errc::invalid_argument);
    CHECK(test::read_plain(dir / "f") == "keep me");
    CHECK(sync_wait(copy_file(dir / "missing", dir / "dst")) ==
          std::errc::no_such_file_or_directory);
    CHECK_FALSE(exists(dir / "dst"));
}
