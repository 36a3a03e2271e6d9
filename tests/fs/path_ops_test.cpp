// SPDX-License-Identifier: MIT
#include <corio/fs/path_ops.hpp>

#include <corio/runtime/sync_wait.hpp>
#include "tests/fs/temp_dir.hpp"

#include <doctest/doctest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

using namespace corio;
using corio::test::exists;
using corio::test::temp_dir;

namespace {

task<result<void>> make_dir(std::string path) {
    result<void> r = co_await corio::mkdir(std::move(path), 0750);
    co_return r;
}

task<result<void>> rename_path(std::string from, std::string to, unsigned flags) {
    result<void> r = co_await corio::rename(std::move(from), std::move(to), flags);
    co_return r;
}

task<result<void>> unlink_path(std::string path) {
    result<void> r = co_await corio::unlink(std::move(path));
    co_return r;
}

task<result<void>> remove_dir(std::string path) {
    result<void> r = co_await corio::rmdir(std::move(path));
    co_return r;
}

task<result<void>> relative_ops(int dir_fd) {
    result<void> made = co_await corio::mkdir_at(dir_fd, "sub");
    if (!made)
        co_return made;
    result<void> moved = co_await corio::rename_at(dir_fd, "sub", dir_fd, "sub2");
    if (!moved)
        co_return moved;
    result<void> removed = co_await corio::unlink_at(dir_fd, "sub2", AT_REMOVEDIR);
    co_return removed;
}

task<result<std::vector<directory_entry>>> list(std::string path) {
    result<std::vector<directory_entry>> r = co_await list_directory(std::move(path));
    co_return r;
}

} // namespace

TEST_CASE("mkdir creates a directory with its mode, and a second mkdir is file_exists") {
    temp_dir dir;
    CHECK(sync_wait(make_dir(dir / "d")).has_value());
    struct stat st;
    REQUIRE(::stat((dir / "d").c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    mode_t mask = ::umask(0); // read the umask...
    ::umask(mask);            // ...and put it back
    CHECK((st.st_mode & 07777) == (0750 & ~mask));
    CHECK(sync_wait(make_dir(dir / "d")) == std::errc::file_exists);
    CHECK(sync_wait(make_dir(dir / "missing/d")) == std::errc::no_such_file_or_directory);
}

TEST_CASE("rename moves a file, replaces the target, and RENAME_NOREPLACE refuses to") {
    temp_dir dir;
    test::write_plain(dir / "a", "first");
    test::write_plain(dir / "b", "second");
    CHECK(sync_wait(rename_path(dir / "a", dir / "c", 0)).has_value());
    CHECK_FALSE(exists(dir / "a"));
    CHECK(test::read_plain(dir / "c") == "first");
    CHECK(sync_wait(rename_path(dir / "c", dir / "b", RENAME_NOREPLACE)) == std::errc::file_exists);
    CHECK(sync_wait(rename_path(dir / "c", dir / "b", 0)).has_value());
    CHECK(test::read_plain(dir / "b") == "first");
    CHECK(sync_wait(rename_path(dir / "c", dir / "d", 0)) == std::errc::no_such_file_or_directory);
}

TEST_CASE("unlink removes a file; a missing name is no_such_file_or_directory") {
    temp_dir dir;
    test::write_plain(dir / "f", "x");
    CHECK(sync_wait(unlink_path(dir / "f")).has_value());
    CHECK_FALSE(exists(dir / "f"));
    CHECK(sync_wait(unlink_path(dir / "f")) == std::errc::no_such_file_or_directory);
}

TEST_CASE("rmdir removes an empty directory and refuses a non-empty one") {
    temp_dir dir;
    REQUIRE(::mkdir((dir / "d").c_str(), 0755) == 0);
    test::write_plain(dir / "d/f", "x");
    CHECK(sync_wait(remove_dir(dir / "d")) == std::errc::directory_not_empty);
    CHECK(sync_wait(unlink_path(dir / "d")) == std::errc::is_a_directory);
    CHECK(sync_wait(unlink_path(dir / "d/f")).has_value());
    CHECK(sync_wait(remove_dir(dir / "d")).has_value());
    CHECK_FALSE(exists(dir / "d"));
}

TEST_CASE("mkdir_at, rename_at and unlink_at work relative to a directory descriptor") {
    temp_dir dir;
    int dir_fd = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(dir_fd >= 0);
    CHECK(sync_wait(relative_ops(dir_fd)).has_value());
    ::close(dir_fd);
    CHECK_FALSE(exists(dir / "sub"));
    CHECK_FALSE(exists(dir / "sub2"));
}

TEST_CASE("list_directory returns every entry sorted by name with its type") {
    temp_dir dir;
    test::write_plain(dir / "b-file", "x");
    REQUIRE(::mkdir((dir / "a-dir").c_str(), 0755) == 0);
    REQUIRE(::symlink("b-file", (dir / "c-link").c_str()) == 0);
    REQUIRE(::mkfifo((dir / "d-fifo").c_str(), 0644) == 0);
    result<std::vector<directory_entry>> r = sync_wait(list(dir.path()));
    REQUIRE(r.has_value());
    std::vector<directory_entry> expected = {
        {"a-dir", file_type::directory},
        {"b-file", file_type::regular},
        {"c-link", file_type::symlink},
        {"d-fifo", file_type::fifo},
    };
    CHECK(*r == expected);
}

TEST_CASE("list_directory of an empty directory is empty; errors are values") {
    temp_dir dir;
    result<std::vector<directory_entry>> empty = sync_wait(list(dir.path()));
    CHECK(empty.value().empty());
    CHECK(sync_wait(list(dir / "missing")) == std::errc::no_such_file_or_directory);
    test::write_plain(dir / "f", "x");
    CHECK(sync_wait(list(dir / "f")) == std::errc::not_a_directory);
}
