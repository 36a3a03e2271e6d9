// SPDX-License-Identifier: MIT
// corio::file: an open file whose every operation (open, read/write at an offset, fsync, statx,
// fallocate, close) goes through the loop's io_uring. 64-bit offsets; O_DIRECT checked up front.
#pragma once

#include <corio/fs/aligned_buffer.hpp>
#include <corio/fs/detail/rw_ops.hpp>
#include <corio/fs/fs_error.hpp>
#include <corio/runtime/detail/io_op.hpp>
#include <corio/runtime/result.hpp>

#include <fcntl.h>
#include <linux/openat2.h>
#include <liburing.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace corio {

/// What statx reports (the kernel's struct; fields valid per `stx_mask`).
using file_status = struct ::statx;

class open_op;
class close_op;
class fsync_op;
class statx_op;
class fallocate_op;
/// One read SQE (read_some_at, read_some); resumes with the bytes read. Works with with_timeout().
using read_op = fs_detail::contiguous_op<false, false>;
/// One write SQE (write_some_at, write_some); resumes with the bytes written.
using write_op = fs_detail::contiguous_op<true, false>;
/// One readv SQE (readv_some_at); resumes with the bytes read into the vector.
using readv_op = fs_detail::vectored_op<false, false>;
/// One writev SQE (writev_some_at); resumes with the bytes written from the vector.
using writev_op = fs_detail::vectored_op<true, false>;
/// Reads until full (read_at: or end of file; read_exact_at: end of file is io_errc::eof).
/// Loops inside the ring and resumes with a transfer_result (the bytes read before an error in
/// transferred()); for a deadline use timeout(task), not with_timeout().
using read_exact_op = fs_detail::loop_op<fs_detail::contiguous_op<false, true>>;
/// Writes until everything is written (write_all_at, write_all); a transfer_result. Same
/// deadline note.
using write_all_op = fs_detail::loop_op<fs_detail::contiguous_op<true, true>>;
/// readv until every iovec is full (readv_exact_at); a transfer_result. Same deadline note.
using readv_exact_op = fs_detail::loop_op<fs_detail::vectored_op<false, true>>;
/// writev until every iovec is written (writev_all_at); a transfer_result. Same deadline note.
using writev_all_op = fs_detail::loop_op<fs_detail::vectored_op<true, true>>;

/// An open file descriptor, owned. Move-only. Every operation is an awaitable that goes through
/// the current io_context's ring; none blocks the loop. Buffers (and iovec arrays) belong to the
/// caller and must stay valid until the co_await returns; the file must stay open until then.
///
/// Closing: `co_await f.close()` closes through the ring and is the normal path. A file that is
/// destroyed still open is closed with a synchronous \::close() as a fallback (never fails loudly;
/// the error, if any, is lost - await close() when it matters, e.g. after writes).
class file {
public:
    /// A file that is not open.
    file() noexcept = default;
    /// Adopts `fd` (closed by this object). `open_flags` are the flags it was opened with: only
    /// O_DIRECT matters (it turns on the alignment check).
    explicit file(int fd, int open_flags = 0) noexcept
        : m_fd(fd), m_direct_alignment((open_flags & O_DIRECT) ? k_direct_io_alignment : 0) {}
    /// Takes over the descriptor of `other`, which is left not open.
    file(file&& other) noexcept
        : m_fd(std::exchange(other.m_fd, -1)), m_direct_alignment(other.m_direct_alignment) {}
    /// Closes the descriptor this file owns (synchronously, like the destructor), then takes over
    /// the one of `other`.
    file& operator=(file&& other) noexcept {
        if (this != &other) {
            close_now();
            m_fd = std::exchange(other.m_fd, -1);
            m_direct_alignment = other.m_direct_alignment;
        }
        return *this;
    }
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    /// Fallback only: closes a still-open file synchronously with \::close().
    ~file() { close_now(); }

    /// Opens `path` (relative to the working directory) with open(2) `flags` and `mode` through
    /// IORING_OP_OPENAT (kernel 5.6+). O_CLOEXEC is always added. NOTE: leave O_NONBLOCK out for
    /// regular files (or clear it with fcntl after opening, e.g. after opening with it so that a
    /// FIFO cannot block the open): io_uring then ends a read that would wait with EAGAIN instead
    /// of doing it in its worker. Resumes with the file, or the
    /// errno (e.g. std::errc::no_such_file_or_directory). The path is kept in the op until the
    /// completion. Opening with O_DIRECT turns on the alignment check (see direct_alignment()).
    [[nodiscard]] static open_op open(std::string path, int flags = O_RDONLY, mode_t mode = 0644);
    /// Like open(), with `path` relative to the directory `dir_fd` (or AT_FDCWD).
    [[nodiscard]] static open_op open_at(int dir_fd, std::string path, int flags = O_RDONLY,
                                         mode_t mode = 0644);
    /// Opens `path` relative to the directory `dir_fd` without ever leaving it: through
    /// IORING_OP_OPENAT2 (kernel 5.6+) with openat2(2)'s `resolve` flags. With the default
    /// RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS the kernel refuses an absolute path, a `..` that
    /// climbs above `dir_fd` and a symlink whose target lies outside it, with std::errc::
    /// cross_device_link (EXDEV), and /proc magic links with ELOOP: a jail for a document root.
    /// Add RESOLVE_NO_SYMLINKS to refuse every symlink (ELOOP). `mode` only with O_CREAT/O_TMPFILE.
    [[nodiscard]] static open_op open_beneath(int dir_fd, std::string path, int flags = O_RDONLY,
                                              std::uint64_t resolve = RESOLVE_BENEATH |
                                                                      RESOLVE_NO_MAGICLINKS,
                                              mode_t mode = 0);
    /// Opens `path` for writing, creating it with `mode` or truncating it (O_WRONLY|O_CREAT|
    /// O_TRUNC), plus `extra_flags` (e.g. O_DIRECT).
    [[nodiscard]] static open_op create(std::string path, mode_t mode = 0644, int extra_flags = 0);

    /// True while this object owns a descriptor.
    [[nodiscard]] bool is_open() const noexcept { return m_fd >= 0; }
    /// The descriptor (-1 when not open). Still owned by this object.
    [[nodiscard]] int native_handle() const noexcept { return m_fd; }
    /// Gives up ownership of the descriptor and returns it.
    [[nodiscard]] int release() noexcept { return std::exchange(m_fd, -1); }

    /// True when the file was opened with O_DIRECT.
    [[nodiscard]] bool is_direct() const noexcept { return m_direct_alignment != 0; }
    /// The alignment every buffer address, offset and length must have on an O_DIRECT file
    /// (0 otherwise). Defaults to 4096, which every device accepts; set_direct_alignment() lowers
    /// it (e.g. to 512, or to statx's stx_dio_offset_align) when the device allows it.
    [[nodiscard]] std::size_t direct_alignment() const noexcept { return m_direct_alignment; }
    /// Changes the O_DIRECT alignment check (a power of two; ignored on non-O_DIRECT files).
    void set_direct_alignment(std::size_t alignment) noexcept {
        if (is_direct())
            m_direct_alignment = alignment;
    }

    // ----- reads -----

    /// One read at `offset` (one SQE). Resumes with the bytes read: fewer than asked is normal,
    /// 0 means end of file. On an O_DIRECT file a misaligned buffer, offset or length is refused
    /// before submission with fs_errc::misaligned_direct_io (== std::errc::invalid_argument).
    [[nodiscard]] read_op read_some_at(std::span<std::byte> buffer,
                                       std::uint64_t offset) const noexcept {
        return {m_fd, buffer, offset, fs_detail::transfer_mode::some, m_direct_alignment};
    }
    /// Reads until `buffer` is full or end of file (pread-in-a-loop semantics). Resumes with the
    /// bytes read; fewer than buffer.size() means the file ended. On an error after a partial
    /// read, the error is reported with transferred() = the bytes already in the buffer.
    [[nodiscard]] read_exact_op read_at(std::span<std::byte> buffer,
                                        std::uint64_t offset) const noexcept {
        return {m_fd, buffer, offset, fs_detail::transfer_mode::until_eof, m_direct_alignment};
    }
    /// Reads exactly buffer.size() bytes. Resumes with buffer.size(), or the error with
    /// transferred() = the bytes already in the buffer. End of file first is io_errc::eof, the
    /// same end-of-stream error as stream_socket::recv_exact.
    [[nodiscard]] read_exact_op read_exact_at(std::span<std::byte> buffer,
                                              std::uint64_t offset) const noexcept {
        return {m_fd, buffer, offset, fs_detail::transfer_mode::exact, m_direct_alignment};
    }
    /// One vectored read (IORING_OP_READV): fills the iovecs in order; may be partial.
    [[nodiscard]] readv_op readv_some_at(std::span<const iovec> vec,
                                         std::uint64_t offset) const noexcept {
        return {m_fd, vec, offset, fs_detail::transfer_mode::some, m_direct_alignment};
    }
    /// Vectored read that fills every iovec; end of file first is io_errc::eof. Errors carry
    /// the bytes read before them (transferred()).
    [[nodiscard]] readv_exact_op readv_exact_at(std::span<const iovec> vec,
                                                std::uint64_t offset) const noexcept {
        return {m_fd, vec, offset, fs_detail::transfer_mode::exact, m_direct_alignment};
    }

    // ----- writes -----

    /// One write at `offset` (one SQE); may be partial. Same O_DIRECT check as read_some_at.
    [[nodiscard]] write_op write_some_at(std::span<const std::byte> data,
                                         std::uint64_t offset) const noexcept {
        return {m_fd, data, offset, fs_detail::transfer_mode::some, m_direct_alignment};
    }
    /// write_some_at for text (the characters must outlive the co_await).
    [[nodiscard]] write_op write_some_at(std::string_view text,
                                         std::uint64_t offset) const noexcept {
        return write_some_at(std::as_bytes(std::span(text.data(), text.size())), offset);
    }
    /// Writes all of `data` at `offset`, looping over partial writes. Resumes with data.size(),
    /// or the error with transferred() = the bytes written before it. A write that makes no
    /// progress ends with fs_errc::write_made_no_progress.
    [[nodiscard]] write_all_op write_all_at(std::span<const std::byte> data,
                                            std::uint64_t offset) const noexcept {
        return {m_fd, data, offset, fs_detail::transfer_mode::all, m_direct_alignment};
    }
    /// write_all_at for text (the characters must outlive the co_await).
    [[nodiscard]] write_all_op write_all_at(std::string_view text,
                                            std::uint64_t offset) const noexcept {
        return write_all_at(std::as_bytes(std::span(text.data(), text.size())), offset);
    }
    /// One vectored write (IORING_OP_WRITEV); may be partial.
    [[nodiscard]] writev_op writev_some_at(std::span<const iovec> vec,
                                           std::uint64_t offset) const noexcept {
        return {m_fd, vec, offset, fs_detail::transfer_mode::some, m_direct_alignment};
    }
    /// Vectored write of every iovec, looping over partial writes; errors carry the bytes
    /// written before them (transferred()).
    [[nodiscard]] writev_all_op writev_all_at(std::span<const iovec> vec,
                                              std::uint64_t offset) const noexcept {
        return {m_fd, vec, offset, fs_detail::transfer_mode::all, m_direct_alignment};
    }

    // ----- at the file position (pipes, terminals, stdin/stdout) -----

    /// One read at the file position, which it advances (offset -1 in the SQE, kernel 5.6+): for
    /// descriptors without offsets (pipes, terminals, sockets). May be partial; 0 means EOF.
    [[nodiscard]] read_op read_some(std::span<std::byte> buffer) const noexcept {
        return read_some_at(buffer, fs_detail::k_current_position);
    }
    /// One write at the file position (O_APPEND files: at the end). May be partial.
    [[nodiscard]] write_op write_some(std::span<const std::byte> data) const noexcept {
        return write_some_at(data, fs_detail::k_current_position);
    }
    /// Writes all of `data` at the file position, looping over partial writes (a pipe or a
    /// terminal may take less than asked). Resumes with data.size(), or the error with
    /// transferred() = the bytes written before it.
    [[nodiscard]] write_all_op write_all(std::span<const std::byte> data) const noexcept {
        return write_all_at(data, fs_detail::k_current_position);
    }

    // ----- metadata and durability -----

    /// Flushes data and metadata to the device (IORING_OP_FSYNC, kernel 5.1+).
    [[nodiscard]] fsync_op fsync() const noexcept;
    /// Flushes data and the metadata needed to read it back (IORING_FSYNC_DATASYNC).
    [[nodiscard]] fsync_op fdatasync() const noexcept;
    /// The file's status (IORING_OP_STATX on the descriptor, kernel 5.6+). The statx buffer lives
    /// in the op until the completion; the result is returned by value.
    [[nodiscard]] statx_op statx(unsigned mask = STATX_BASIC_STATS) const;
    /// fallocate(2) through the ring (IORING_OP_FALLOCATE, kernel 5.6+): `mode` 0 allocates
    /// [offset, offset+length) and extends the size; FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE...
    [[nodiscard]] fallocate_op fallocate(std::uint64_t offset, std::uint64_t length,
                                         int mode = 0) const noexcept;

    /// Closes through the ring (IORING_OP_CLOSE, kernel 5.6+). The file is not open from this
    /// call on; the op owns the descriptor and closes it even if the awaiting task is cancelled
    /// (close is not cancellable), or synchronously if the op is never awaited. Operations still
    /// in flight on this file must have completed first (the fd number may be reused at once).
    [[nodiscard]] close_op close() noexcept;

private:
    void close_now() noexcept;

    int m_fd = -1;                      // the owned descriptor, or -1
    std::size_t m_direct_alignment = 0; // O_DIRECT alignment to check, 0 without O_DIRECT
};

/// Awaits IORING_OP_OPENAT, or IORING_OP_OPENAT2 when resolve flags are given; resumes with
/// result<file>.
class [[nodiscard]] open_op : public detail::basic_op<open_op> {
public:
    /// Made by file::open(), open_at(), open_beneath() and create(); `path` is kept in the op until
    /// the completion. Touches no ring until awaited.
    open_op(int dir_fd, std::string path, int flags, mode_t mode,
            std::uint64_t resolve = 0) noexcept
        : m_dir_fd(dir_fd), m_path(std::move(path)),
          m_how{.flags = static_cast<std::uint64_t>(static_cast<unsigned>(flags | O_CLOEXEC)),
                .mode = mode,
                .resolve = resolve} {}

    void prepare(io_uring_sqe* sqe) noexcept {
        if (m_how.resolve != 0)
            io_uring_prep_openat2(sqe, m_dir_fd, m_path.c_str(), &m_how);
        else
            io_uring_prep_openat(sqe, m_dir_fd, m_path.c_str(), static_cast<int>(m_how.flags),
                                 static_cast<mode_t>(m_how.mode));
    }
    result<file> await_resume() const noexcept {
        if (m_res < 0)
            return errno_code(-m_res);
        return file(m_res, static_cast<int>(m_how.flags));
    }

private:
    int m_dir_fd;       // AT_FDCWD or the directory `m_path` is relative to
    std::string m_path; // read by the kernel; lives here until the completion
    open_how m_how;     // flags (O_CLOEXEC added), mode, resolve; read by the kernel for OPENAT2
};

/// Awaits IORING_OP_CLOSE; resumes with result<void>. Owns the descriptor until then.
class [[nodiscard]] close_op : public detail::basic_op<close_op> {
public:
    /// Never resubmitted after EINTR: the descriptor is released even then (close(2)), and the
    /// number may already belong to another file. The awaiter sees the EINTR.
    static constexpr bool restart_on_eintr = false;

    /// Made by file::close(), which gives up the descriptor to the op; -1 resumes with EBADF
    /// without touching the ring. An op destroyed unawaited closes `fd` synchronously.
    explicit close_op(int fd) noexcept : m_fd(fd) {}
    close_op(const close_op&) = delete;
    close_op& operator=(const close_op&) = delete;
    ~close_op();

    [[nodiscard]] bool await_ready() const noexcept { return m_fd < 0; }
    /// Ignores the awaiter's stop token: a close must happen.
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> waiter) {
        return start(waiter, stop_token{});
    }
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_close(sqe, m_fd);
        m_submitted = true;
    }
    result<void> await_resume() const noexcept {
        if (m_fd < 0)
            return std::errc::bad_file_descriptor;
        return detail::result_from_res<void>(m_res);
    }

private:
    int m_fd;                 // the descriptor to close (-1: the file was not open)
    bool m_submitted = false; // the ring owns the close now
};

/// Awaits IORING_OP_FSYNC; resumes with result<void>.
class [[nodiscard]] fsync_op : public detail::basic_op<fsync_op> {
public:
    /// Made by file::fsync() (`fsync_flags` 0) and file::fdatasync() (IORING_FSYNC_DATASYNC).
    fsync_op(int fd, unsigned fsync_flags) noexcept : m_fd(fd), m_fsync_flags(fsync_flags) {}

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_fsync(sqe, m_fd, m_fsync_flags); }
    result<void> await_resume() const noexcept { return detail::result_from_res<void>(m_res); }

private:
    int m_fd;               // the file
    unsigned m_fsync_flags; // 0 or IORING_FSYNC_DATASYNC
};

/// Awaits IORING_OP_STATX; resumes with result<file_status>. The statx buffer is a member, so it
/// lives in the awaiting frame until the kernel has written it.
class [[nodiscard]] statx_op : public detail::basic_op<statx_op> {
public:
    /// Made by file::statx() and stat_path(); `path` is kept in the op until the completion.
    statx_op(int dir_fd, std::string path, int at_flags, unsigned mask) noexcept
        : m_dir_fd(dir_fd), m_path(std::move(path)), m_at_flags(at_flags), m_mask(mask) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_statx(sqe, m_dir_fd, m_path.c_str(), m_at_flags, m_mask, &m_status);
    }
    result<file_status> await_resume() const noexcept {
        if (m_res < 0)
            return errno_code(-m_res);
        return m_status;
    }

private:
    int m_dir_fd;           // the file itself (with AT_EMPTY_PATH) or a directory
    std::string m_path;     // "" for the descriptor itself; lives here until the completion
    int m_at_flags;         // AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW...
    unsigned m_mask;        // STATX_* fields wanted
    file_status m_status{}; // written by the kernel
};

/// Awaits IORING_OP_FALLOCATE; resumes with result<void>.
class [[nodiscard]] fallocate_op : public detail::basic_op<fallocate_op> {
public:
    /// Made by file::fallocate(): fallocate(2) `mode` over `length` bytes from `offset`.
    fallocate_op(int fd, int mode, std::uint64_t offset, std::uint64_t length) noexcept
        : m_fd(fd), m_mode(mode), m_offset(offset), m_length(length) {}

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_fallocate(sqe, m_fd, m_mode, static_cast<off_t>(m_offset),
                                static_cast<off_t>(m_length));
    }
    result<void> await_resume() const noexcept { return detail::result_from_res<void>(m_res); }

private:
    int m_fd;               // the file
    int m_mode;             // fallocate(2) mode flags
    std::uint64_t m_offset; // start of the range
    std::uint64_t m_length; // length of the range
};

inline open_op file::open(std::string path, int flags, mode_t mode) {
    return open_op(AT_FDCWD, std::move(path), flags, mode);
}
inline open_op file::open_at(int dir_fd, std::string path, int flags, mode_t mode) {
    return open_op(dir_fd, std::move(path), flags, mode);
}
inline open_op file::open_beneath(int dir_fd, std::string path, int flags, std::uint64_t resolve,
                                  mode_t mode) {
    return open_op(dir_fd, std::move(path), flags, mode, resolve);
}
inline open_op file::create(std::string path, mode_t mode, int extra_flags) {
    return open_op(AT_FDCWD, std::move(path), O_WRONLY | O_CREAT | O_TRUNC | extra_flags, mode);
}
inline fsync_op file::fsync() const noexcept {
    return fsync_op(m_fd, 0);
}
inline fsync_op file::fdatasync() const noexcept {
    return fsync_op(m_fd, IORING_FSYNC_DATASYNC);
}
inline statx_op file::statx(unsigned mask) const {
    return statx_op(m_fd, std::string(), AT_EMPTY_PATH, mask);
}
inline fallocate_op file::fallocate(std::uint64_t offset, std::uint64_t length,
                                    int mode) const noexcept {
    return fallocate_op(m_fd, mode, offset, length);
}
inline close_op file::close() noexcept {
    return close_op(std::exchange(m_fd, -1));
}

/// The status of `path` (IORING_OP_STATX, kernel 5.6+); `at_flags` e.g. AT_SYMLINK_NOFOLLOW.
[[nodiscard]] inline statx_op stat_path(std::string path, unsigned mask = STATX_BASIC_STATS,
                                        int at_flags = 0) {
    return statx_op(AT_FDCWD, std::move(path), at_flags, mask);
}

} // namespace corio
