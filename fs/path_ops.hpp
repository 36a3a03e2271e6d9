// SPDX-License-Identifier: MIT
// Path operations through the ring (rename, unlink, rmdir, mkdir) and directory listing through
// the offload pool (the ring has no getdents). Call them qualified: corio::rename(...), since the
// C library declares functions of the same names.
#pragma once

#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/offload.hpp>
#include <corio/runtime/result.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>

#include <string>
#include <utility>
#include <vector>

namespace corio {

/// Awaits IORING_OP_RENAMEAT (kernel 5.11+); resumes with result<void>.
class [[nodiscard]] rename_op : public detail::basic_op<rename_op> {
public:
    /// Made by rename() and rename_at(); the paths are kept in the op until the completion.
    /// `flags` are renameat2(2) flags.
    rename_op(int old_dir, std::string old_path, int new_dir, std::string new_path,
              unsigned flags) noexcept
        : m_old_dir(old_dir), m_old_path(std::move(old_path)), m_new_dir(new_dir),
          m_new_path(std::move(new_path)), m_flags(flags) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_renameat(sqe, m_old_dir, m_old_path.c_str(), m_new_dir, m_new_path.c_str(),
                               m_flags);
    }
    result<void> await_resume() const noexcept { return detail::result_from_res<void>(m_res); }

private:
    int m_old_dir;          // directory m_old_path is relative to (or AT_FDCWD)
    std::string m_old_path; // lives here until the completion
    int m_new_dir;          // directory m_new_path is relative to (or AT_FDCWD)
    std::string m_new_path; // lives here until the completion
    unsigned m_flags;       // renameat2 flags: RENAME_NOREPLACE, RENAME_EXCHANGE...
};

/// Awaits IORING_OP_UNLINKAT (kernel 5.11+); resumes with result<void>.
class [[nodiscard]] unlink_op : public detail::basic_op<unlink_op> {
public:
    /// Made by unlink(), unlink_at() and rmdir() (`flags` AT_REMOVEDIR); `path` is kept in the
    /// op until the completion.
    unlink_op(int dir, std::string path, int flags) noexcept
        : m_dir(dir), m_path(std::move(path)), m_flags(flags) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_unlinkat(sqe, m_dir, m_path.c_str(), m_flags);
    }
    result<void> await_resume() const noexcept { return detail::result_from_res<void>(m_res); }

private:
    int m_dir;          // directory m_path is relative to (or AT_FDCWD)
    std::string m_path; // lives here until the completion
    int m_flags;        // 0 or AT_REMOVEDIR
};

/// Awaits IORING_OP_MKDIRAT (kernel 5.15+); resumes with result<void>.
class [[nodiscard]] mkdir_op : public detail::basic_op<mkdir_op> {
public:
    /// Made by mkdir() and mkdir_at(); `path` is kept in the op until the completion.
    mkdir_op(int dir, std::string path, mode_t mode) noexcept
        : m_dir(dir), m_path(std::move(path)), m_mode(mode) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_mkdirat(sqe, m_dir, m_path.c_str(), m_mode);
    }
    result<void> await_resume() const noexcept { return detail::result_from_res<void>(m_res); }

private:
    int m_dir;          // directory m_path is relative to (or AT_FDCWD)
    std::string m_path; // lives here until the completion
    mode_t m_mode;      // permissions (before the umask)
};

/// Renames `from` to `to` (renameat2; `flags` e.g. RENAME_NOREPLACE). Atomic within a filesystem;
/// std::errc::cross_device_link across filesystems.
[[nodiscard]] inline rename_op rename(std::string from, std::string to, unsigned flags = 0) {
    return rename_op(AT_FDCWD, std::move(from), AT_FDCWD, std::move(to), flags);
}
/// rename() with each path relative to its own directory descriptor (or AT_FDCWD).
[[nodiscard]] inline rename_op rename_at(int from_dir, std::string from, int to_dir, std::string to,
                                         unsigned flags = 0) {
    return rename_op(from_dir, std::move(from), to_dir, std::move(to), flags);
}

/// Removes the name `path` (not a directory: that is std::errc::is_a_directory; use rmdir()).
[[nodiscard]] inline unlink_op unlink(std::string path) {
    return unlink_op(AT_FDCWD, std::move(path), 0);
}
/// unlinkat(2): `path` relative to `dir` (or AT_FDCWD); `flags` 0 or AT_REMOVEDIR.
[[nodiscard]] inline unlink_op unlink_at(int dir, std::string path, int flags = 0) {
    return unlink_op(dir, std::move(path), flags);
}
/// Removes the empty directory `path` (UNLINKAT with AT_REMOVEDIR); a non-empty one gives
/// std::errc::directory_not_empty.
[[nodiscard]] inline unlink_op rmdir(std::string path) {
    return unlink_op(AT_FDCWD, std::move(path), AT_REMOVEDIR);
}

/// Creates the directory `path` with `mode` (minus the umask); std::errc::file_exists if taken.
[[nodiscard]] inline mkdir_op mkdir(std::string path, mode_t mode = 0755) {
    return mkdir_op(AT_FDCWD, std::move(path), mode);
}
/// mkdir() relative to the directory `dir` (or AT_FDCWD).
[[nodiscard]] inline mkdir_op mkdir_at(int dir, std::string path, mode_t mode = 0755) {
    return mkdir_op(dir, std::move(path), mode);
}

/// The kind of a directory entry.
enum class file_type : unsigned char {
    unknown,
    regular,
    directory,
    symlink,
    block_device,
    character_device,
    fifo,
    socket,
};

/// One entry of a directory listing.
struct directory_entry {
    std::string name; ///< the entry's name within its directory (no path, never "." or "..")
    file_type type = file_type::unknown; ///< what it is (a symlink is reported as a symlink)

    friend bool operator==(const directory_entry&, const directory_entry&) = default;
};

namespace fs_detail {
/// The blocking half of list_directory(): runs on an offload worker.
struct list_directory_job {
    std::string m_path; // the directory to list

    [[nodiscard]] result<std::vector<directory_entry>> operator()() const;
};
} // namespace fs_detail

/// Lists the directory `path` on the offload pool (opendir/readdir block; the ring cannot list a
/// directory). Resumes on the loop with the entries sorted by name, without "." and "..", or the
/// errno (e.g. std::errc::no_such_file_or_directory, std::errc::not_a_directory). Not
/// cancellable once started (see offload()).
[[nodiscard]] inline offload_op<fs_detail::list_directory_job> list_directory(std::string path) {
    return offload(fs_detail::list_directory_job{std::move(path)});
}

} // namespace corio
