// SPDX-License-Identifier: MIT
// The laboratory's shared plumbing (see lab.hpp): nothing here runs per request except the
// request-line parser and the read planner, which all four styles call the same way.
#include "lab.hpp"

#include "examples/common/cli.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <time.h>
#include <vector>

namespace lab {

namespace {

constexpr std::size_t k_align = 4096; // O_DIRECT alignment: a page suits every block device

const char* g_program = "lab"; // argv[0]'s name, for messages
constexpr std::size_t k_pread_length = 4 << 20;  // --block-kind pread: one cold 4 MiB read
constexpr std::size_t k_mmap_length = 256 << 10;  // --block-kind mmap: 64 cold pages touched
// Large folios: the page cache may hold a file in folios of up to 2 MiB, and
// POSIX_FADV_DONTNEED drops only the folios wholly inside its range, so a range is dropped with
// the 2 MiB-aligned windows around it.
constexpr std::uint64_t k_drop_window = 2 << 20;

std::uint64_t g_block_every = 0;          // --block-every
std::string g_block_kind = "sleep";       // --block-kind
std::atomic<std::uint64_t> g_requests{0}; // requests seen by should_block()
int g_cold_fd = -1;                       // --block-file (pread, mmap kinds)
std::uint64_t g_cold_size = 0;            // its size
std::size_t g_cold_length = 0;            // bytes per cold range
const char* g_cold_map = nullptr;         // mmap kind: the whole file, mapped read-only
std::atomic<std::uint64_t> g_cold_next{0}; // ranges handed out by next_cold_range()

/// Opens --block-file for the pread and mmap kinds: written back first (dirty pages cannot be
/// dropped), readahead off (each read or fault brings in only what it asks for), no page cached.
void open_cold_file(const options& opt) {
    int fd = ::open(opt.block_file.c_str(), O_RDONLY | O_CLOEXEC);
    struct ::stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size < 4096) {
        std::fprintf(stderr, "%s: --block-file %s: %s\n", g_program, opt.block_file.c_str(),
                     fd < 0 ? std::strerror(errno) : "not a file of at least 4096 bytes");
        std::exit(2);
    }
    g_cold_fd = fd;
    g_cold_size = static_cast<std::uint64_t>(st.st_size) / 4096 * 4096;
    g_cold_length = static_cast<std::size_t>(std::min<std::uint64_t>(
        opt.block_kind == "pread" ? k_pread_length : k_mmap_length, g_cold_size));
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (opt.block_kind != "mmap")
        return;
    void* map = ::mmap(nullptr, g_cold_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        std::fprintf(stderr, "%s: mmap %s: %s\n", g_program, opt.block_file.c_str(),
                     std::strerror(errno));
        std::exit(1);
    }
    ::madvise(map, g_cold_size, MADV_RANDOM); // a fault reads its page, no neighbours
    g_cold_map = static_cast<const char*>(map);
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty())
        return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

/// The job a command line is for.
enum class job { echo, files, sync };

/// --cpus: comma-separated CPU numbers and ranges (`0,1`, `0-3`), each below 4096.
std::string parse_cpu_list(const std::string& text, std::vector<int>& out) {
    out.clear();
    std::string_view rest = text;
    while (!rest.empty()) {
        std::size_t comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        std::size_t dash = item.find('-');
        std::optional<unsigned long long> from = cli::parse_unsigned(item.substr(0, dash), 0, 4095);
        std::optional<unsigned long long> to = from;
        if (dash != std::string_view::npos)
            to = cli::parse_unsigned(item.substr(dash + 1), 0, 4095);
        if (!from || !to || *to < *from)
            return "wants CPU numbers or ranges below 4096 (0,1 or 0-3), got '" + text + "'";
        for (unsigned long long cpu = *from; cpu <= *to; ++cpu)
            out.push_back(static_cast<int>(cpu));
    }
    if (out.empty())
        return "wants at least one CPU, got '" + text + "'";
    return {};
}

options parse(int argc, char** argv, const char* program, job kind, bool shard_flags) {
    bool files_job = kind == job::files;
    g_program = program;
    std::signal(SIGPIPE, SIG_IGN);
    options opt;
    cli::parser p(program,
                  kind == job::files  ? "A laboratory file server (examples/lab/files)."
                  : kind == job::sync ? "A laboratory key-value server (examples/lab/sync)."
                                      : "A laboratory echo server (examples/lab/echo).",
                  "  SIGINT/SIGTERM: stop, print a stats line to stderr, exit 0.");
    p.number("--port", opt.port, 0, 65535,
             "TCP port; 0 (the default) picks an ephemeral one, printed as `listening on N`");
    p.text("--bind", opt.bind, "IPv4 address to listen on").type("ADDR");
    p.number("--buffer-size", opt.buffer_size, 1, 1 << 24,
             "bytes per read (socket reads; file reads too)")
        .type("BYTES");
    p.number("--sq-entries", opt.sq_entries, 1, 32768,
             "io_uring SQ entries (uring and corio styles)");
    p.number("--cq-entries", opt.cq_entries, 0, 65536,
             "io_uring CQ entries; 0: the kernel's 2 x SQ");
    p.number("--max-connections", opt.max_connections, 1, 10'000'000,
             "beyond this, new connections are closed at once");
    if (files_job) {
        p.text("--root", opt.root, "the directory served").type("DIR").required();
        p.flag("--direct", opt.direct, "O_DIRECT reads into aligned buffers");
    }
    if (shard_flags) {
        p.number("--shards", opt.shards, 1, 256, "loops, one thread each, sharing nothing");
        p.add(
             "--cpus", "CPUs to pin the shards to: shard i on the i-th (0,1 or 0-3); default: none",
             [&opt](std::string& text) { return parse_cpu_list(text, opt.cpus); },
             [](const std::string&) {})
            .type("LIST");
    }
    if (kind == job::sync && !shard_flags)
        p.number("--lock-stripes", opt.lock_stripes, 1, 4096,
                 "maps with a mutex each, the key's hash picks one; 1: one lock for everything");
    if (kind == job::sync) {
        p.parse(argc, argv);
        return opt;
    }
    // The blocking job (docs/blocking.md).
    p.number("--block-every", opt.block_every, 0, 1'000'000'000,
             "every Nth request (over all connections) makes a blocking call first; 0: none");
    p.word(
         "--block-kind", {"sleep", "hash", "pread", "mmap"},
         [&opt](const std::string& v) { opt.block_kind = v; },
         "the blocking call: a 5 ms sleep, hashing 10 MiB, a cold 4 MiB pread of --block-file, "
         "or touching 256 KiB of its cold mapping (page faults)")
        .default_text("sleep");
    p.text("--block-file", opt.block_file, "pread, mmap: the file read cold (not modified)")
        .type("FILE");
    p.word(
         "--block-fix", {"offload", "ring"},
         [&opt](const std::string& v) { (v == "ring" ? opt.block_ring : opt.block_offload) = true; },
         "corio: run the blocking call in offload(), or (pread, mmap) read the range through "
         "the ring");
    p.parse(argc, argv);
    if (files_job && opt.root.empty())
        p.fail("--root DIR is required");
    bool cold = opt.block_kind == "pread" || opt.block_kind == "mmap";
    if (cold && opt.block_file.empty())
        p.fail("--block-kind " + opt.block_kind + " needs --block-file FILE");
    if (opt.block_ring && !cold)
        p.fail("--block-fix ring needs --block-kind pread or mmap");
    g_block_every = opt.block_every;
    g_block_kind = opt.block_kind;
    if (cold)
        open_cold_file(opt);
    return opt;
}

} // namespace

options parse_args(int argc, char** argv, const char* program, bool files_job) {
    return parse(argc, argv, program, files_job ? job::files : job::echo, false);
}

options parse_sync_args(int argc, char** argv, const char* program, bool shard_flags) {
    return parse(argc, argv, program, job::sync, shard_flags);
}

void print_stats(const stats& s, std::string_view extra) {
    std::fprintf(
        stderr, "stats: connections=%llu requests=%llu bytes_in=%llu bytes_out=%llu",
        static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.requests),
        static_cast<unsigned long long>(s.bytes_in), static_cast<unsigned long long>(s.bytes_out));
    if (s.frame_bytes_peak != 0)
        std::fprintf(stderr, " frame_bytes_peak=%llu",
                     static_cast<unsigned long long>(s.frame_bytes_peak));
    if (s.stalls != 0)
        std::fprintf(stderr, " stalls=%llu", static_cast<unsigned long long>(s.stalls));
    std::fprintf(stderr, "%.*s\n", static_cast<int>(extra.size()), extra.data());
    std::fflush(stderr);
}

int listen_socket(const options& opt, bool nonblocking) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(opt.port);
    if (::inet_pton(AF_INET, opt.bind.c_str(), &sin.sin_addr) != 1) {
        std::fprintf(stderr, "%s: --bind wants an IPv4 address, got '%s'\n", g_program,
                     opt.bind.c_str());
        std::exit(2);
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    int one = 1;
    socklen_t len = sizeof sin;
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || ::listen(fd, 4096) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
        std::fprintf(stderr, "%s: cannot listen on %s:%u: %s\n", g_program, opt.bind.c_str(),
                     opt.port, std::strerror(errno));
        std::exit(1);
    }
    std::printf("listening on %u\n", ntohs(sin.sin_port));
    std::fflush(stdout);
    return fd;
}

sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

int stop_signal_fd(bool nonblocking) {
    sigset_t set = block_stop_signals();
    int fd = ::signalfd(-1, &set, SFD_CLOEXEC | (nonblocking ? SFD_NONBLOCK : 0));
    if (fd < 0) {
        std::fprintf(stderr, "%s: signalfd: %s\n", g_program, std::strerror(errno));
        std::exit(1);
    }
    return fd;
}

file_request parse_request(std::string_view line) {
    file_request req;
    std::string_view fields[4];
    std::size_t count = 0;
    while (!line.empty() && count < 4) {
        std::size_t space = line.find(' ');
        fields[count++] = line.substr(0, space);
        line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    }
    if (count != 4 || !line.empty() || fields[0] != "GET" || !parse_u64(fields[2], req.offset) ||
        !parse_u64(fields[3], req.length)) {
        req.error = "ERR bad request\n";
        return req;
    }
    req.name = fields[1];
    if (req.name.empty() || req.name == "." || req.name == ".." ||
        req.name.find('/') != std::string_view::npos ||
        req.name.find('\0') != std::string_view::npos)
        req.error = "ERR bad name\n";
    return req;
}

std::string_view open_error(int err) {
    switch (err) {
    case ENOENT:
        return "ERR no such file\n";
    case EACCES:
    case EPERM:
        return "ERR permission denied\n";
    case EINVAL:
        return "ERR cannot open (O_DIRECT unsupported?)\n";
    default:
        return "ERR cannot open\n";
    }
}

std::string_view plan_reply(const struct ::stat& st, const file_request& req, std::uint64_t& n) {
    if (!S_ISREG(st.st_mode))
        return "ERR not a file\n";
    auto size = static_cast<std::uint64_t>(st.st_size);
    n = req.offset >= size ? 0 : std::min(req.length, size - req.offset);
    return {};
}

std::size_t format_ok(char* out, std::uint64_t n) {
    int len = std::snprintf(out, 32, "OK %llu\n", static_cast<unsigned long long>(n));
    return static_cast<std::size_t>(len);
}

int file_open_flags(const options& opt) {
    return O_RDONLY | O_CLOEXEC | (opt.direct ? O_DIRECT : 0);
}

std::size_t file_buffer_size(const options& opt) {
    if (!opt.direct)
        return opt.buffer_size;
    return (opt.buffer_size + k_align - 1) / k_align * k_align;
}

file_buffer::file_buffer(const options& opt)
    : m_data(static_cast<char*>(::operator new (file_buffer_size(opt), std::align_val_t{k_align}))),
      m_size(file_buffer_size(opt)) {}

file_buffer::~file_buffer() {
    ::operator delete (m_data, std::align_val_t{k_align});
}

read_step next_read(const options& opt, std::uint64_t pos, std::uint64_t left) {
    read_step step;
    std::size_t cap = file_buffer_size(opt);
    if (!opt.direct) {
        step.at = pos;
        step.length = static_cast<std::size_t>(std::min<std::uint64_t>(cap, left));
        return step;
    }
    step.at = pos / k_align * k_align;
    step.skip = static_cast<std::size_t>(pos - step.at);
    std::uint64_t want = (step.skip + left + k_align - 1) / k_align * k_align;
    step.length = static_cast<std::size_t>(std::min<std::uint64_t>(cap, want));
    return step;
}

std::size_t usable(const read_step& step, std::size_t got, std::uint64_t left) {
    if (got <= step.skip)
        return 0;
    return static_cast<std::size_t>(std::min<std::uint64_t>(got - step.skip, left));
}

int open_root(const options& opt) {
    int fd = ::open(opt.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        std::fprintf(stderr, "%s: --root %s: %s\n", g_program, opt.root.c_str(),
                     std::strerror(errno));
        std::exit(1);
    }
    return fd;
}

} // namespace lab

namespace lab {

bool should_block() {
    if (g_block_every == 0)
        return false;
    return g_requests.fetch_add(1, std::memory_order_relaxed) % g_block_every ==
           g_block_every - 1;
}

cold_range next_cold_range() {
    std::uint64_t windows = g_cold_size / g_cold_length;
    std::uint64_t k = g_cold_next.fetch_add(1, std::memory_order_relaxed);
    cold_range r{g_cold_fd, (k * 7 % windows) * g_cold_length, g_cold_length};
    std::uint64_t from = r.offset / k_drop_window * k_drop_window;
    std::uint64_t to = (r.offset + r.length + k_drop_window - 1) / k_drop_window * k_drop_window;
    if (g_cold_map) // a page still mapped is not dropped from the cache: unmap the range first
        ::madvise(const_cast<char*>(g_cold_map) + r.offset, r.length, MADV_DONTNEED);
    ::posix_fadvise(g_cold_fd, static_cast<off_t>(from), static_cast<off_t>(to - from),
                    POSIX_FADV_DONTNEED);
    return r;
}

int cold_file() {
    return g_cold_fd;
}

char* cold_sink() {
    static char* sink = new char[k_pread_length];
    return sink;
}

std::uint64_t block_once() {
    if (g_block_kind == "sleep") {
        timespec left{0, 5'000'000};
        while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
        }
        return 0;
    }
    if (g_block_kind == "pread") {
        cold_range r = next_cold_range();
        std::uint64_t done = 0;
        while (done < r.length) {
            ssize_t n = ::pread(r.fd, cold_sink() + done, r.length - done,
                                static_cast<off_t>(r.offset + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += static_cast<std::uint64_t>(n);
        }
        return done;
    }
    if (g_block_kind == "mmap") {
        cold_range r = next_cold_range();
        const volatile char* page = g_cold_map + r.offset;
        std::uint64_t sum = 0;
        for (std::size_t at = 0; at < r.length; at += 4096)
            sum += static_cast<unsigned char>(page[at]); // a major page fault each
        return sum;
    }
    static const std::vector<unsigned char> data(10 << 20, 0x5a);
    std::uint64_t h = 1469598103934665603ull; // FNV-1a over 10 MiB: about 10 ms of CPU
    for (unsigned char c : data)
        h = (h ^ c) * 1099511628211ull;
    return h;
}

} // namespace lab
