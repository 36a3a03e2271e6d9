// SPDX-License-Identifier: MIT
// The two send_file_range strategies. Both submit one linked pair of SQEs per chunk (produce,
// then consume) and only fall back to single SQEs to finish a partial consume.
#include <corio/fs/send_file.hpp>

#include <corio/fs/detail/sqe_ops.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace corio {

namespace {

constexpr int k_send_flags = MSG_NOSIGNAL | MSG_WAITALL;

unsigned next_chunk(std::uint64_t left, std::size_t chunk) noexcept {
    return static_cast<unsigned>(std::min<std::uint64_t>(left, chunk));
}

/// What one linked trip (read or splice into the middle, then send or splice out) means for the
/// transfer loops of both strategies.
struct trip {
    std::error_code error;    // set: the transfer stops with this error
    bool end_of_file = false; // the file had nothing more to give
    std::size_t got = 0;      // bytes taken from the file
    std::size_t out = 0;      // of those, bytes the linked second SQE already delivered
};

trip classify(fs_detail::pair_result r) noexcept {
    if (r.first == -EINTR)
        return {}; // nothing taken from the file, the second half cancelled: the same trip again
    if (r.first < 0)
        return {errno_code(-r.first)};
    if (r.first == 0)
        return {{}, true};
    // A short first half broke the link (the second was cancelled); a short second half left a
    // tail, and an interrupted one (EINTR) all of it. Either way the caller finishes the tail
    // with single SQEs (which retry EINTR themselves).
    if (r.second < 0 && r.second != -ECANCELED && r.second != -EINTR)
        return {errno_code(-r.second)};
    return {{}, false, static_cast<std::size_t>(r.first),
            r.second > 0 ? static_cast<std::size_t>(r.second) : 0};
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

/// Idle resources kept per thread between calls: read_send buffers and splice pipes. A call
/// takes one and gives it back when it is done with it, so a server sending many small ranges
/// pays neither an allocation nor pipe setup (pipe2 + 2 fcntl + 2 close) per call.
class resource_cache {
public:
    static constexpr std::size_t k_max_idle = 4; // per kind; more concurrent calls allocate

    struct pipe_pair {
        int read_end = -1;         // what the socket splice drains
        int write_end = -1;        // what the file splice fills
        std::size_t requested = 0; // the chunk size it was sized for
        std::size_t capacity = 0;  // what the kernel granted
    };

    resource_cache() {
        static std::once_flag registered;
        std::call_once(registered, [] { ::pthread_atfork(nullptr, nullptr, &forget_in_child); });
    }
    ~resource_cache() { forget(); }
    resource_cache(const resource_cache&) = delete;
    resource_cache& operator=(const resource_cache&) = delete;

    std::unique_ptr<std::byte[]> take_buffer(std::size_t size) {
        for (std::size_t i = 0; i < m_buffers.size(); ++i) {
            if (m_buffers[i].first == size) {
                std::unique_ptr<std::byte[]> out = std::move(m_buffers[i].second);
                m_buffers.erase(m_buffers.begin() + static_cast<std::ptrdiff_t>(i));
                return out;
            }
        }
        return std::unique_ptr<std::byte[]>(new std::byte[size]);
    }
    void give_buffer(std::size_t size, std::unique_ptr<std::byte[]> buffer) {
        if (m_buffers.size() < k_max_idle)
            m_buffers.emplace_back(size, std::move(buffer));
    }

    /// A pipe sized for `chunk` (capped by /proc/sys/fs/pipe-max-size), or the errno.
    result<pipe_pair> take_pipe(std::size_t chunk) {
        for (std::size_t i = 0; i < m_pipes.size(); ++i) {
            if (m_pipes[i].requested == chunk) {
                pipe_pair out = m_pipes[i];
                m_pipes.erase(m_pipes.begin() + static_cast<std::ptrdiff_t>(i));
                return out;
            }
        }
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            return errno_code(errno);
        pipe_pair out{fds[0], fds[1], chunk, 0};
        // A pipe holds 64 KiB by default; grow it to a chunk (the kernel may refuse: keep 64 KiB).
        (void)::fcntl(out.write_end, F_SETPIPE_SZ, static_cast<int>(chunk));
        int capacity = ::fcntl(out.write_end, F_GETPIPE_SZ);
        out.capacity = capacity > 0 ? static_cast<std::size_t>(capacity) : 65536;
        return out;
    }
    /// Keeps `p` for the next call; only for a pipe known to be empty.
    void give_pipe(pipe_pair p) {
        if (m_pipes.size() < k_max_idle)
            m_pipes.push_back(p);
        else
            close_pipe(p);
    }
    static void close_pipe(pipe_pair& p) noexcept {
        io_context::close_fd(p.read_end);
        io_context::close_fd(p.write_end);
    }

private:
    /// Drops everything (the pipes are closed).
    void forget() noexcept {
        for (pipe_pair& p : m_pipes)
            close_pipe(p);
        m_pipes.clear();
        m_buffers.clear();
    }
    /// A forked child shares the parent's idle pipes: were it to use one and fail half-way, the
    /// parent would later splice into a pipe that still holds the child's bytes (and block on it
    /// when full). The child drops its copies instead.
    static void forget_in_child() noexcept;

    std::vector<std::pair<std::size_t, std::unique_ptr<std::byte[]>>> m_buffers; // idle buffers
    std::vector<pipe_pair> m_pipes;                                              // idle, empty
};

thread_local resource_cache t_cache;

void resource_cache::forget_in_child() noexcept {
    t_cache.forget();
}

task<result<std::uint64_t>> read_send_range(int file_fd, std::uint64_t offset, std::uint64_t length,
                                            int socket_fd, std::size_t chunk) {
    std::unique_ptr<std::byte[]> buffer = t_cache.take_buffer(chunk); // reused for every chunk
    std::uint64_t sent = 0;
    result<std::uint64_t> outcome = std::errc::io_error;
    for (;;) {
        if (sent == length) {
            outcome = sent;
            break;
        }
        unsigned want = next_chunk(length - sent, chunk);
        std::byte* data = buffer.get();
        std::uint64_t at = offset + sent;
        fs_detail::sqe_template read_sqe = fs_detail::make_sqe(
            [&](io_uring_sqe* s) { io_uring_prep_read(s, file_fd, data, want, at); });
        fs_detail::sqe_template send_sqe = fs_detail::make_sqe(
            [&](io_uring_sqe* s) { io_uring_prep_send(s, socket_fd, data, want, k_send_flags); });
        fs_detail::pair_result r = co_await fs_detail::linked_pair_op(read_sqe, send_sqe);
        trip t = classify(r);
        if (t.error) {
            outcome = t.error;
            break;
        }
        if (t.end_of_file) {
            outcome = sent;
            break;
        }
        result<void> rest = co_await send_rest(socket_fd, data, t.out, t.got);
        if (!rest) {
            outcome = rest.error();
            break;
        }
        sent += t.got;
    }
    t_cache.give_buffer(chunk, std::move(buffer));
    co_return outcome;
}

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
    result<resource_cache::pipe_pair> taken = t_cache.take_pipe(chunk);
    if (!taken)
        co_return taken.error();
    resource_cache::pipe_pair pipe = *taken;
    std::size_t per_trip = std::min(chunk, pipe.capacity);
    std::uint64_t sent = 0;
    result<std::uint64_t> outcome = std::errc::io_error;
    for (;;) {
        if (sent == length) {
            outcome = sent;
            break;
        }
        unsigned want = next_chunk(length - sent, per_trip);
        auto at = static_cast<std::int64_t>(offset + sent);
        fs_detail::sqe_template fill = fs_detail::make_sqe([&](io_uring_sqe* s) {
            io_uring_prep_splice(s, file_fd, at, pipe.write_end, -1, want, 0);
        });
        fs_detail::sqe_template drain = fs_detail::make_sqe([&](io_uring_sqe* s) {
            io_uring_prep_splice(s, pipe.read_end, -1, socket_fd, -1, want, 0);
        });
        fs_detail::pair_result r = co_await fs_detail::linked_pair_op(fill, drain);
        trip t = classify(r);
        if (t.error) {
            outcome = t.error;
            break;
        }
        if (t.end_of_file) {
            outcome = sent;
            break;
        }
        result<void> rest = co_await splice_rest(pipe.read_end, socket_fd, t.out, t.got);
        if (!rest) {
            outcome = rest.error();
            break;
        }
        sent += t.got;
    }
    // Only a pipe known to be empty goes back: after an error it may still hold file bytes.
    if (outcome)
        t_cache.give_pipe(pipe);
    else
        resource_cache::close_pipe(pipe);
    co_return outcome;
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
    send_file_strategy strategy = options.strategy;
    if (strategy == send_file_strategy::automatic)
        strategy = length >= k_splice_min_length ? send_file_strategy::splice
                                                 : send_file_strategy::read_send;
    if (strategy == send_file_strategy::splice)
        return splice_range(f.native_handle(), offset, length, socket_fd, chunk);
    return read_send_range(f.native_handle(), offset, length, socket_fd, chunk);
}

} // namespace corio
