// SPDX-License-Identifier: MIT
// The laboratory's shared plumbing (see lab.hpp): nothing here runs per request except the
// request-line parser and the read planner, which all four styles call the same way.
#include "lab.hpp"

#include "examples/common/cli.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <time.h>
#include <vector>

namespace lab {

namespace {

constexpr std::size_t k_align = 4096; // O_DIRECT alignment: a page suits every block device

const char* g_program = "lab"; // argv[0]'s name, for messages
std::uint64_t g_block_every = 0;          // --block-every
bool g_block_hash = false;                // --block-kind hash
std::atomic<std::uint64_t> g_requests{0}; // requests seen by should_block()

bool parse_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty())
        return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

} // namespace

options parse_args(int argc, char** argv, const char* program, bool files_job) {
    g_program = program;
    std::signal(SIGPIPE, SIG_IGN);
    options opt;
    cli::parser p(program,
                  files_job ? "A laboratory file server (examples/lab/files)."
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
    // The blocking job (docs/blocking.md).
    p.number("--block-every", opt.block_every, 0, 1'000'000'000,
             "every Nth request (over all connections) makes a blocking call first; 0: none");
    p.word(
         "--block-kind", {"sleep", "hash"}, [&opt](const std::string& v) { opt.block_kind = v; },
         "the blocking call: a 5 ms sleep or hashing 10 MiB")
        .default_text("sleep");
    p.word(
         "--block-fix", {"offload"}, [&opt](const std::string&) { opt.block_offload = true; },
         "corio: run the blocking call in offload()");
    p.parse(argc, argv);
    if (files_job && opt.root.empty())
        p.fail("--root DIR is required");
    g_block_every = opt.block_every;
    g_block_hash = opt.block_kind == "hash";
    return opt;
}

void print_stats(const stats& s) {
    std::fprintf(
        stderr, "stats: connections=%llu requests=%llu bytes_in=%llu bytes_out=%llu",
        static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.requests),
        static_cast<unsigned long long>(s.bytes_in), static_cast<unsigned long long>(s.bytes_out));
    if (s.frame_bytes_peak != 0)
        std::fprintf(stderr, " frame_bytes_peak=%llu",
                     static_cast<unsigned long long>(s.frame_bytes_peak));
    if (s.stalls != 0)
        std::fprintf(stderr, " stalls=%llu", static_cast<unsigned long long>(s.stalls));
    std::fprintf(stderr, "\n");
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

std::uint64_t block_once() {
    if (!g_block_hash) {
        timespec left{0, 5'000'000};
        while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
        }
        return 0;
    }
    static const std::vector<unsigned char> data(10 << 20, 0x5a);
    std::uint64_t h = 1469598103934665603ull; // FNV-1a over 10 MiB: about 10 ms of CPU
    for (unsigned char c : data)
        h = (h ^ c) * 1099511628211ull;
    return h;
}

} // namespace lab
