// SPDX-License-Identifier: MIT
// send_file_range: a file's bytes to a socket through the ring, with no thread and no blocking
// call. Two strategies (splice through a pipe, or read + send with a reused buffer), measured
// against each other in bench/fs_bench.cpp.
#pragma once

#include "fs/file.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

#include <cstddef>
#include <cstdint>

namespace corio {

/// How send_file_range moves the bytes.
enum class send_file_strategy : unsigned char {
    /// Per chunk, IORING_OP_READ into one reused buffer linked (IOSQE_IO_LINK) to IORING_OP_SEND
    /// of that buffer: one trip through the ring per chunk, executed inline by the submitting
    /// thread. The default: measured faster than splice here (see bench/fs_bench.cpp).
    read_send,
    /// Per chunk, IORING_OP_SPLICE file -> pipe linked to IORING_OP_SPLICE pipe -> socket: no
    /// copy through user memory, but io_uring runs splice on its io-wq worker threads, which costs
    /// a thread hand-off per SQE.
    splice,
};

/// The strategy send_file_range uses when none is named.
inline constexpr send_file_strategy k_default_send_file_strategy = send_file_strategy::read_send;

/// Knobs of send_file_range (same NOTE as write_file_options about braced temporaries).
struct send_file_options {
    send_file_strategy strategy = k_default_send_file_strategy; ///< see send_file_strategy
    std::size_t chunk_size = 128 * 1024; ///< bytes per trip (the pipe is sized to it for splice)
};

/// Sends `length` bytes of `f` starting at `offset` to the connected stream socket `socket_fd`
/// (TCP or Unix; MSG_NOSIGNAL: a closed peer is std::errc::broken_pipe, never SIGPIPE). Like
/// sendfile(2), resumes with the bytes sent, fewer than `length` only when the file ended first.
/// An error (from the file or the socket) is reported as such; the bytes sent before it are not
/// counted. `f` and the socket must stay open until the co_await returns.
[[nodiscard]] task<result<std::uint64_t>> send_file_range(const file& f, std::uint64_t offset,
                                                          std::uint64_t length, int socket_fd);
/// send_file_range with explicit options (strategy, chunk size).
[[nodiscard]] task<result<std::uint64_t>> send_file_range(const file& f, std::uint64_t offset,
                                                          std::uint64_t length, int socket_fd,
                                                          send_file_options options);

} // namespace corio
