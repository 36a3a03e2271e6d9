// SPDX-License-Identifier: MIT
// The two send_file_range strategies. Both submit one linked pair of SQEs per chunk (produce,
// then consume) and only fall back to single SQEs to finish a partial consume.
#include "fs/send_file.hpp"

#include "fs/detail/sqe_ops.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

namespace corio {

namespace {

constexpr int k_send_flags = MSG_NOSIGNAL | MSG_WAITALL;

unsigned next_chunk(std::uint64_t left, std::size_t chunk) noexcept {
    return static_cast<unsigned>(std::min<std::uint64_t>(left, chunk));
}

/// Sends buffer[done, size) with single SEND SQEs (after a partial or unlinked send).
task<result<void>> send_rest(int socket_fd, const std::byte* data, std::size_t done,
                             std::size_t size) {
    while (done < size) {
        fs_detail::sqe_template sqe = fs_detail::make_sqe([&](io_uring_sqe* s) {
            io_uring_prep_send(s, socket_fd, data + done, size - done, k_send_flags);
        });
        int res = co_await fs_detail::sqe_op(sqe);
        if (res < 0)
            co_return errno_code(-res);
        if (res == 0)
            co_return std::errc::broken_pipe;
        done += static_cast<std::size_t>(res);
    }
    co_return result<void>();
}

task<result<std::uint64_t>> read_send_range(int file_fd, std::uint64_t offset, std::uint64_t length,
                                            int socket_fd, std::size_t chunk) {
    std::unique_ptr<std::byte[]> buffer(new std::byte[chunk]); // reused for every chunk
    std::uint64_t sent = 0;
    while (sent < length) {
        unsigned want = next_chunk(length - sent, chunk);
        std::byte* data = buffer.get();
        std::uint64_t at = offset + sent;
        fs_detail::sqe_template read_sqe = fs_detail::make_sqe(
            [&](io_uring_sqe* s) { io_uring_prep_read(s, file_fd, data, want, at); });
        fs_detail::sqe_template send_sqe = fs_detail::make_sqe(
            [&](io_uring_sqe* s) { io_uring_prep_send(s, socket_fd, data, want, k_send_flags); });
        fs_detail::pair_result r = co_await fs_detail::linked_pair_op(read_sqe, send_sqe);
        if (r.first < 0)
            co_return errno_code(-r.first);
        if (r.first == 0)
            break; // end of file
        if (r.second < 0 && r.second != -ECANCELED)
            co_return errno_code(-r.second);
        auto got = static_cast<std::size_t>(r.first);
        std::size_t out = r.second > 0 ? static_cast<std::size_t>(r.second) : 0;
        // A short read broke the link (the send was cancelled); a short send left a tail.
        result<void> rest = co_await send_rest(socket_fd, data, out, got);
        if (!rest)
            co_return rest.error();
        sent += got;
    }
    co_return sent;
}

/// Both ends of a pipe, closed synchronously (a pipe's close never blocks).
struct pipe_fds {
    int read_end = -1;
    int write_end = -1;
    pipe_fds() = default;
    pipe_fds(const pipe_fds&) = delete;
    pipe_fds& operator=(const pipe_fds&) = delete;
    ~pipe_fds() {
        if (read_end >= 0)
            ::close(read_end);
        if (write_end >= 0)
            ::close(write_end);
    }
};

/// Moves pipe contents [done, size) to the socket with single SPLICE SQEs.
task<result<void>> splice_rest(int pipe_read, int socket_fd, std::size_t done, std::size_t size) {
    while (done < size) {
        auto left = static_cast<unsigned>(size - done);
        fs_detail::sqe_template sqe = fs_detail::make_sqe([&](io_uring_sqe* s) {
            io_uring_prep_splice(s, pipe_read, -1, socket_fd, -1, left, 0);
        });
        int res = co_await fs_detail::sqe_op(sqe);
        if (res < 0)
            co_return errno_code(-res);
        if (res == 0)
            co_return std::errc::broken_pipe;
        done += static_cast<std::size_t>(res);
    }
    co_return result<void>();
}

task<result<std::uint64_t>> splice_range(int file_fd, std::uint64_t offset, std::uint64_t length,
                                         int socket_fd, std::size_t chunk) {
    pipe_fds pipe;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        co_return errno_code(errno);
    pipe.read_end = fds[0];
    pipe.write_end = fds[1];
    // A pipe holds 64 KiB by default; grow it to a chunk (capped by /proc/sys/fs/pipe-max-size).
    (void)::fcntl(pipe.write_end, F_SETPIPE_SZ, static_cast<int>(chunk));
    int capacity = ::fcntl(pipe.write_end, F_GETPIPE_SZ);
    std::size_t per_trip =
        capacity > 0 ? std::min(chunk, static_cast<std::size_t>(capacity)) : chunk;

    std::uint64_t sent = 0;
    while (sent < length) {
        unsigned want = next_chunk(length - sent, per_trip);
        auto at = static_cast<std::int64_t>(offset + sent);
        int pipe_in = pipe.write_end;
        int pipe_out = pipe.read_end;
        fs_detail::sqe_template fill = fs_detail::make_sqe(
            [&](io_uring_sqe* s) { io_uring_prep_splice(s, file_fd, at, pipe_in, -1, want, 0); });
        fs_detail::sqe_template drain = fs_detail::make_sqe([&](io_uring_sqe* s) {
            io_uring_prep_splice(s, pipe_out, -1, socket_fd, -1, want, 0);
        });
        fs_detail::pair_result r = co_await fs_detail::linked_pair_op(fill, drain);
        if (r.first < 0)
            co_return errno_code(-r.first);
        if (r.first == 0)
            break; // end of file
        if (r.second < 0 && r.second != -ECANCELED)
            co_return errno_code(-r.second);
        auto got = static_cast<std::size_t>(r.first);
        std::size_t out = r.second > 0 ? static_cast<std::size_t>(r.second) : 0;
        result<void> rest = co_await splice_rest(pipe_out, socket_fd, out, got);
        if (!rest)
            co_return rest.error();
        sent += got;
    }
    co_return sent;
}

} // namespace

task<result<std::uint64_t>> send_file_range(const file& f, std::uint64_t offset,
                                            std::uint64_t length, int socket_fd) {
    return send_file_range(f, offset, length, socket_fd, send_file_options{});
}

task<result<std::uint64_t>> send_file_range(const file& f, std::uint64_t offset,
                                            std::uint64_t length, int socket_fd,
                                            send_file_options options) {
    // Not a coroutine: the tasks below take the descriptor by value, never the file by reference.
    std::size_t chunk = std::max<std::size_t>(options.chunk_size, 4096);
    if (options.strategy == send_file_strategy::splice)
        return splice_range(f.native_handle(), offset, length, socket_fd, chunk);
    return read_send_range(f.native_handle(), offset, length, socket_fd, chunk);
}

} // namespace corio
