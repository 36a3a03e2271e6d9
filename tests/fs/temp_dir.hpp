// SPDX-License-Identifier: MIT
// Test helpers for the fs suite: a temporary directory on a real filesystem (not tmpfs, so
// O_DIRECT can work), deterministic byte patterns, and synchronous reference I/O.
#pragma once

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace corio::test {

/// A fresh directory made with mkdtemp, removed with its contents on destruction. Lives under
/// $TMPDIR or /tmp, or /var/tmp when that is tmpfs.
class temp_dir {
public:
    temp_dir() {
        std::string base = choose_base();
        std::string pattern = base + "/corio-fs-test-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::system_error(errno, std::system_category(), "mkdtemp " + pattern);
        m_path = pattern;
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(m_path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    [[nodiscard]] const std::string& path() const noexcept { return m_path; }
    /// The path of `name` inside the directory.
    [[nodiscard]] std::string operator/(const std::string& name) const {
        return m_path + "/" + name;
    }

    /// True when the directory's filesystem is tmpfs (no O_DIRECT there).
    [[nodiscard]] bool is_tmpfs() const noexcept { return is_tmpfs(m_path); }

private:
    static bool is_tmpfs(const std::string& dir) noexcept {
        struct statfs fs;
        return ::statfs(dir.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
    }
    static std::string choose_base() {
        const char* env = std::getenv("TMPDIR");
        std::string base = env && *env ? env : "/tmp";
        return is_tmpfs(base) ? "/var/tmp" : base;
    }

    std::string m_path; // the directory
};

/// `size` deterministic bytes that differ per position and per `seed` (never all zero).
inline std::string pattern(std::size_t size, unsigned seed = 1) {
    std::string out(size, '\0');
    std::uint32_t x = 2463534242u ^ seed;
    for (std::size_t i = 0; i < size; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = static_cast<char>(x);
    }
    return out;
}

/// Writes `bytes` to `path` with plain syscalls (reference, not under test).
inline void write_plain(const std::string& path, const std::string& bytes) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw std::system_error(errno, std::system_category(), "open " + path);
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) {
            ::close(fd);
            throw std::system_error(errno, std::system_category(), "write " + path);
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

/// Reads all of `path` with plain syscalls (reference, not under test).
inline std::string read_plain(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::system_category(), "open " + path);
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            ::close(fd);
            throw std::system_error(errno, std::system_category(), "read " + path);
        }
        if (n == 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

/// True when `path` names something (a file, a directory...).
inline bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

/// True when `fd` is an open descriptor of this process.
inline bool is_open_fd(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

} // namespace corio::test
