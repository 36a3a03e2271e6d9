// SPDX-License-Identifier: MIT
// What the eight laboratory servers (examples/lab/{echo,files}/{threads,epoll,uring,corio}.cpp)
// share and what is not under comparison: the command line, the listening socket, the stop
// signals, the stats line and the file protocol's parsing. Every handler lives in its own file.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lab {

/// The command line, identical for all eight servers (see usage() in lab.cpp).
struct options {
    std::string bind = "127.0.0.1";      // address to listen on
    std::uint16_t port = 0;              // 0: an ephemeral port (printed as `listening on N`)
    std::size_t buffer_size = 4096;      // bytes per read (socket reads; file reads too)
    unsigned sq_entries = 256;           // io_uring SQ size (uring and corio styles)
    unsigned cq_entries = 0;             // io_uring CQ size, 0: the kernel's 2 × SQ
    std::size_t max_connections = 20000; // beyond this, new connections are closed at once
    std::string root;                    // files job: the directory served (required)
    bool direct = false;                 // files job: O_DIRECT reads into aligned buffers
    // The blocking job (docs/blocking.md): every Nth request over all connections blocks first.
    std::uint64_t block_every = 0;       // 0: no request blocks
    std::string block_kind = "sleep";    // sleep: 5 ms in nanosleep; hash: hash 10 MiB (CPU);
                                         // pread: a cold 4 MiB pread; mmap: 256 KiB of a cold
                                         // mapping touched page by page (major page faults)
    std::string block_file;              // pread, mmap: the file read cold (not modified)
    bool block_offload = false;          // corio: the fix, the blocking call runs in offload()
    bool block_ring = false;             // corio, pread/mmap: the fix, the ring reads the range
    // The synchronisation job (docs/synchronisation.md): corio (shards, cpus), threads (stripes).
    unsigned shards = 1;                 // --shards: loops, one thread each
    std::vector<int> cpus;               // --cpus: shard i runs on cpus[i % size]; empty: unpinned
    unsigned lock_stripes = 1;           // threads: maps with a mutex each (key_owner picks one)
};

/// Parses argv (exits 2 with a usage line on bad input, 0 on --help). `files_job` enables and
/// requires --root. Also ignores SIGPIPE: a peer that goes away is an error value, not a signal.
options parse_args(int argc, char** argv, const char* program, bool files_job);

/// The synchronisation job's command line (examples/lab/sync): the common flags without the
/// blocking job's, plus --shards N and --cpus LIST (`0,1`, `0-3`) when `shard_flags` (corio),
/// else --lock-stripes N (threads).
options parse_sync_args(int argc, char** argv, const char* program, bool shard_flags);

/// The counters of the exit line.
struct stats {
    std::uint64_t connections = 0; // connections accepted and served
    std::uint64_t requests = 0;    // echo reads served / file requests answered (ERR included)
    std::uint64_t bytes_in = 0;    // bytes received from clients
    std::uint64_t bytes_out = 0;   // bytes sent to clients (file replies: headers included)
    std::uint64_t frame_bytes_peak = 0; // corio only: most coroutine-frame bytes alive at once
    std::uint64_t stalls = 0;      // corio only: loop turns over CORIO_STALL_MS
};

/// The blocking job: true for every --block-every'th request (thread-safe), false when off.
bool should_block();
/// The blocking call of --block-kind: 5 ms asleep (restarted after a signal, so that it always
/// blocks 5 ms), hashing 10 MiB, a pread of a cold range of --block-file, or touching a cold range
/// of its mapping page by page (a major page fault per page, with no system call). Returns the
/// hash, the bytes read or the sum of the touched bytes (0 for sleep), so nothing is optimised
/// away.
std::uint64_t block_once();

/// A range of --block-file whose pages are not in the page cache (pread and mmap kinds).
struct cold_range {
    int fd = -1;              // --block-file, open for reading (owned by lab.cpp, never closed)
    std::uint64_t offset = 0; // where the range starts (a multiple of 4096)
    std::size_t length = 0;   // 4 MiB (pread) or 256 KiB (mmap), at most the file's size
};
/// The next range of --block-file (they rotate through the file), its pages dropped from the
/// page cache first (and from the mapping, for mmap): reading it waits for the disk. The pread
/// and mmap kinds of block_once() read it on the calling thread; corio's --block-fix ring reads
/// it through the ring. Thread-safe. Only with --block-kind pread or mmap.
cold_range next_cold_range();
/// --block-file's descriptor (-1 without pread or mmap); owned by lab.cpp, never closed.
int cold_file();
/// Where block_once() and the ring fix read a cold range to: never looked at, shared by every
/// thread (only the kernel writes it), so that no style allocates for the blocking job.
char* cold_sink();

/// Prints `stats: connections=N requests=N bytes_in=N bytes_out=N` to stderr (plus
/// `frame_bytes_peak=N` and `stalls=N` when set, then `extra`, e.g. ` lock_waits=N`).
void print_stats(const stats& s, std::string_view extra = {});

/// socket + SO_REUSEADDR + TCP_NODELAY + bind + listen(4096), then prints `listening on N` to
/// stdout and flushes. Exits 1 on failure. TCP_NODELAY is set on the listener: Linux copies it
/// into every accepted socket, so no style pays a setsockopt per connection.
int listen_socket(const options& opt, bool nonblocking);

/// Blocks SIGINT and SIGTERM in the calling thread (call it before any thread starts, so all
/// inherit the mask) and returns the set, for sigwait() or signalfd().
sigset_t block_stop_signals();

/// A signalfd for SIGINT/SIGTERM (blocks them first). Exits 1 on failure.
int stop_signal_fd(bool nonblocking);

// ----- the file protocol -----
// Request `GET <name> <offset> <length>\n`; reply `OK <n>\n` and n bytes, or `ERR <reason>\n`.

/// The longest request line (without its '\n'); a longer one gets `ERR too long` and a close.
constexpr std::size_t k_max_request_line = 1024;
/// What a connection buffers of requests: one maximal line, and room for pipelined ones.
constexpr std::size_t k_request_buffer = 4096;
/// The reply to an over-long request line (the connection is closed after it).
constexpr std::string_view k_too_long = "ERR too long\n";

/// A parsed request line. `error` is null when the line is valid; otherwise it is the whole
/// reply to send (`ERR ...\n`). `name` points into the line.
struct file_request {
    std::string_view name;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::string_view error;
};

/// Parses one request line (without its '\n'). A name must be a plain file name inside --root:
/// no '/', not "." or "..".
file_request parse_request(std::string_view line);

/// The reply for a file that failed to open with errno `err` (`ERR no such file\n`, ...).
std::string_view open_error(int err);

/// The reply to a stat of the opened file: sets `n` (bytes to send: min(length, size - offset),
/// 0 past the end) and returns an empty view, or returns `ERR not a file\n`.
std::string_view plan_reply(const struct ::stat& st, const file_request& req, std::uint64_t& n);

/// Writes `OK <n>\n` into `out` (at least 32 bytes) and returns its length.
std::size_t format_ok(char* out, std::uint64_t n);

/// open(2) flags for a served file: O_RDONLY|O_CLOEXEC, plus O_DIRECT with --direct.
int file_open_flags(const options& opt);

/// The read buffer for file data: --buffer-size, rounded up to 4096 with --direct.
std::size_t file_buffer_size(const options& opt);

/// A heap buffer of file_buffer_size(opt) bytes aligned to 4096 (what O_DIRECT needs). Owned.
class file_buffer {
public:
    explicit file_buffer(const options& opt);
    ~file_buffer();
    file_buffer(const file_buffer&) = delete;
    file_buffer& operator=(const file_buffer&) = delete;
    [[nodiscard]] char* data() const noexcept { return m_data; }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }

private:
    char* m_data; // aligned to 4096
    std::size_t m_size;
};

/// One file read of a reply: read `length` bytes at `at`, then send from `skip` on. With --direct
/// the read is widened to 4096-byte boundaries (O_DIRECT's rule); otherwise skip is 0.
struct read_step {
    std::uint64_t at = 0;
    std::size_t length = 0;
    std::size_t skip = 0;
};

/// The next read for a reply at file position `pos` with `left` bytes still to send.
read_step next_read(const options& opt, std::uint64_t pos, std::uint64_t left);

/// The bytes of a read of `got` bytes (for `step`) that go to the client, at most `left`;
/// 0 when the read came up short (the file shrank: the connection is then closed).
std::size_t usable(const read_step& step, std::size_t got, std::uint64_t left);

/// The directory fd of --root (O_PATH|O_DIRECTORY), for openat. Exits 1 on failure.
int open_root(const options& opt);

} // namespace lab
