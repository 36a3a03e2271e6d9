// SPDX-License-Identifier: MIT
// send_file_range: a file's bytes to a socket through the ring, with no thread and no blocking
// call. Two strategies (splice through a pipe, or read + send with a reused buffer), measured
// against each other in bench/fs_bench.cpp.
#pragma once

#include <corio/fs/file.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/task.hpp>

#include <cstddef>
#include <cstdint>

namespace corio {

/// How send_file_range moves the bytes. Measured in bench/fs_bench.cpp (2 vCPU VM, kernel 6.18,
/// 128 KiB chunks, process CPU including io-wq threads, medians of 5):
///
///   range      unix socketpair: CPU / wall       TCP loopback: CPU / wall
///   16 KiB     read_send 2.3x / 1.6x better      read_send 1.9x better / splice 1.1x faster
///   64 KiB     about even                        read_send 1.26x better / even
///   128 KiB    splice 1.8x / 3.3x better         read_send 1.24x / 1.05x better
///   256 KiB    splice 1.6x / 2.3x better         even (splice +6% CPU) / splice 1.17x faster
///   8 MiB      splice 1.8x / 2.4x better         splice +15% CPU / splice 1.15x faster
///
/// Short ranges pay splice's fixed costs (two io-wq hand-offs per trip); long ones gain from
/// splice moving page references instead of copying twice. Hence `automatic`.
enum class send_file_strategy : unsigned char {
    /// read_send for ranges shorter than k_splice_min_length, splice from there on: below it
    /// read_send costs less CPU (up to 2x) at about the same speed, above it splice is faster
    /// (1.15-2.4x) at equal or lower CPU. The default.
    automatic,
    /// Per chunk, IORING_OP_READ into one reused buffer linked (IOSQE_IO_LINK) to IORING_OP_SEND
    /// of that buffer: one trip through the ring per chunk, done inline by the submitting thread.
    /// Copies twice (page cache -> buffer -> socket). Buffers are reused across calls per thread.
    read_send,
    /// Per chunk, IORING_OP_SPLICE file -> pipe linked to IORING_OP_SPLICE pipe -> socket: no
    /// copy through user memory, but io_uring runs every splice on its io-wq worker threads (a
    /// thread hand-off per SQE, CPU spent outside the loop's thread). Pipes are reused across
    /// calls per thread (and dropped in a forked child).
    splice,
};

/// The range length from which `automatic` splices (the crossover measured on TCP loopback; on
/// Unix sockets splice already wins from 64-128 KiB).
inline constexpr std::uint64_t k_splice_min_length = 256 * 1024;

/// The strategy send_file_range uses when none is named.
inline constexpr send_file_strategy k_default_send_file_strategy = send_file_strategy::automatic;

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
