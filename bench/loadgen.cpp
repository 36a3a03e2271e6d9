// SPDX-License-Identifier: MIT
// loadgen: the laboratory's closed-loop load generator, built on corio (one thread, one ring).
// C connections each keep D requests in flight (echo messages, file-range requests, or key-value
// GET/SET lines over uniformly random keys for the synchronisation job), every
// byte of every reply is checked against a known pattern, latencies go into a log-linear
// histogram, and one JSON line on stdout sums up the measured phase. bench/lab/run.py drives it.
// Try: build/release/examples/echo --port 0   then
//      build/release/bench/loadgen --port PORT --connections 50 --size 64 --duration 2
#include <corio/corio.hpp>
#include "examples/common/cli.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace net = corio::net;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// ----- options -----

enum class job { echo, files, kv };

struct file_spec {
    std::string name;     // as sent in GET requests
    std::uint64_t size;   // its size on the server's disk
    std::uint8_t seed;    // pattern seed: file_seed(name)
};

struct options {
    std::string host = "127.0.0.1";   // server address (an IPv4/IPv6 literal)
    std::uint16_t port = 0;           // server port (required)
    std::size_t connections = 1;      // connections to open
    std::size_t size = 64;            // echo: bytes per message
    unsigned pipeline = 1;            // requests in flight per connection
    double warmup_s = 1.0;            // seconds before measuring
    double duration_s = 5.0;          // measured seconds
    job mode = job::echo;             // echo, files or kv
    std::vector<file_spec> files;     // files: what the server has
    std::uint64_t range_size = 0;     // files: bytes per request (0: whole files)
    std::uint64_t align = 1;          // files: offsets are multiples of this
    std::size_t connect_batch = 256;  // connects in flight at once
    std::chrono::milliseconds connect_timeout = 5s; // per connect attempt
    std::chrono::milliseconds grace = 2s; // after the measured phase: time to drain replies
    std::uint64_t max_requests = 0;   // total replies after which sending stops (0: no limit)
    std::uint64_t seed = 1;           // request choice (files, kv)
    std::uint64_t keys = 10000;       // kv: keys k0 .. k<keys-1>, chosen uniformly
    unsigned set_percent = 50;        // kv: SET requests among them (the rest are GETs)
    int server_pid = 0;               // >0: sample this process's CPU/RSS/threads from /proc
    int server_cpu = -1;              // >=0: also that core's busy time from /proc/stat
    std::string server_alloc_counter; // non-empty: the server's allocation count file
    unsigned sq_entries = 1024;       // ring sizes
    unsigned cq_entries = 32768;
};

// ----- reply patterns -----

/// Echo: connection `id` sends the byte stream R[(g + shift(id)) % k_period] for g = 0, 1, ...
/// (R pseudo-random, a prime period so that a shifted or repeated chunk does not match).
constexpr std::size_t k_period = 4093;

struct echo_pattern {
    std::vector<std::byte> bytes; // R repeated: k_period + the longest window ever compared

    explicit echo_pattern(std::size_t window) : bytes(k_period + window) {
        std::uint64_t x = 0x9e3779b97f4a7c15ull;
        for (std::size_t i = 0; i < k_period; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes[i] = static_cast<std::byte>(x >> 24);
        }
        for (std::size_t i = k_period; i < bytes.size(); ++i)
            bytes[i] = bytes[i % k_period];
    }
    /// `n` stream bytes of connection `shift` from stream offset `g` (n <= window).
    [[nodiscard]] std::span<const std::byte> window(std::uint64_t g, std::size_t shift,
                                                    std::size_t n) const {
        return std::span(bytes).subspan((g + shift) % k_period, n);
    }
};

/// Files: byte i of file `name` is (lo * 131 + 17 b + 101 (b >> 8) + 7 (b >> 16) + seed) mod 256
/// with lo = i mod 256, b = i / 256, seed = FNV-1a of the name mod 256 (bench/lab/run.py writes
/// the same bytes). Within a 256-byte block it is a rotation of lo * 131, so a reply is checked
/// with memcmp per block, and a range off by any multiple of 256 bytes (up to 2^24 blocks) fails.
std::uint8_t file_seed(std::string_view name) {
    std::uint32_t h = 2166136261u;
    for (char c : name) {
        h ^= static_cast<unsigned char>(c);
        h *= 16777619u;
    }
    return static_cast<std::uint8_t>(h);
}

constexpr unsigned inverse_131() {
    for (unsigned x = 1; x < 256; ++x)
        if ((131 * x) % 256 == 1)
            return x;
    return 0;
}

struct file_pattern {
    std::array<std::byte, 512> base{}; // base[j] = j * 131 mod 256

    file_pattern() {
        for (std::size_t j = 0; j < base.size(); ++j)
            base[j] = static_cast<std::byte>((j * 131) & 0xff);
    }
    static unsigned block_constant(std::uint64_t b, std::uint8_t seed) {
        return static_cast<unsigned>((17 * b + 101 * (b >> 8) + 7 * (b >> 16) + seed) & 0xff);
    }
    /// True when `got` equals the file's bytes from offset `at`.
    [[nodiscard]] bool matches(std::span<const std::byte> got, std::uint64_t at,
                               std::uint8_t seed) const {
        while (!got.empty()) {
            std::uint64_t lo = at & 0xff;
            std::size_t n = std::min<std::size_t>(got.size(), 256 - lo);
            unsigned c = block_constant(at >> 8, seed);
            // lo * 131 + c = (lo + c * 131^-1) * 131 (mod 256): a window of `base`.
            std::size_t start = (lo + c * inverse_131()) & 0xff;
            if (std::memcmp(got.data(), base.data() + start, n) != 0)
                return false;
            got = got.subspan(n);
            at += n;
        }
        return true;
    }
};

// ----- latency histogram -----

/// Log-linear buckets over nanoseconds: 16 per power of two (within 6.25%), exact below 16 ns.
class histogram {
public:
    static constexpr unsigned k_sub_bits = 4;

    void record(std::uint64_t ns) noexcept {
        ++m_counts[index(ns)];
        ++m_total;
    }
    [[nodiscard]] std::uint64_t total() const noexcept { return m_total; }

    /// The q-quantile in microseconds (a bucket's midpoint), 0 when empty.
    [[nodiscard]] double quantile_us(double q) const noexcept {
        if (m_total == 0)
            return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(m_total));
        rank = std::clamp<std::uint64_t>(rank, 1, m_total);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < m_counts.size(); ++i) {
            seen += m_counts[i];
            if (seen >= rank)
                return midpoint_ns(i) / 1000.0;
        }
        return midpoint_ns(m_counts.size() - 1) / 1000.0;
    }

private:
    static std::size_t index(std::uint64_t ns) noexcept {
        constexpr std::uint64_t linear = 1u << k_sub_bits;
        if (ns < linear)
            return static_cast<std::size_t>(ns);
        unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(ns));
        unsigned shift = msb - k_sub_bits;
        return ((shift + 1) << k_sub_bits) + ((ns >> shift) & (linear - 1));
    }
    static double midpoint_ns(std::size_t i) noexcept {
        constexpr std::size_t linear = 1u << k_sub_bits;
        if (i < linear)
            return static_cast<double>(i);
        std::size_t shift = (i >> k_sub_bits) - 1;
        double low = static_cast<double>((linear + (i & (linear - 1))) << shift);
        return low + static_cast<double>(std::size_t{1} << shift) / 2;
    }

    std::array<std::uint64_t, (64 + 1) << k_sub_bits> m_counts{}; // requests per bucket
    std::uint64_t m_total = 0;                                    // requests recorded
};

// ----- shared run state (one thread: no locks) -----

enum class phase { warmup, measure, stop };

struct run_state {
    const options* opt = nullptr;
    const echo_pattern* echo = nullptr;   // echo: the stream pattern
    const file_pattern* files = nullptr;  // files: the content pattern
    phase now = phase::warmup;            // what a completed reply counts towards
    std::uint64_t replies = 0;            // every reply, warm-up included (for --max-requests)
    std::uint64_t warmup_requests = 0;    // replies completed during warm-up
    std::uint64_t requests = 0;           // replies completed during the measured phase
    std::uint64_t bytes = 0;              // reply payload bytes in the measured phase
    std::uint64_t errors = 0;             // broken connections, ERR replies, protocol errors
    std::uint64_t err_replies = 0;        // files: ERR replies (also counted in errors)
    std::uint64_t mismatches = 0;         // replies whose bytes or length were wrong
    std::size_t live = 0;                 // client tasks still running
    histogram latency;                    // measured-phase reply latencies
    std::string first_error;              // the first error seen, for the report

    [[nodiscard]] bool may_send() const noexcept {
        return now != phase::stop && (opt->max_requests == 0 || replies < opt->max_requests);
    }
    void note_error(std::string_view what) {
        ++errors;
        if (first_error.empty())
            first_error = what;
    }
    void complete(clock_type::time_point sent, clock_type::time_point done, std::uint64_t n) {
        ++replies;
        if (now == phase::warmup) {
            ++warmup_requests;
        } else if (now == phase::measure) {
            ++requests;
            bytes += n;
            latency.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(done - sent).count()));
        }
    }
};

/// A broken connection: counted unless it is our own cancellation at the end of the run.
void connection_failed(run_state* st, const char* what, std::error_code ec) {
    if (st->now == phase::stop && ec == std::errc::operation_canceled)
        return;
    st->note_error(std::string(what) + ": " + ec.message());
}

/// Sends all of `data` (one SQE unless the socket buffer is full).
corio::task<bool> send_all(net::tcp_stream* conn, std::span<const std::byte> data,
                           run_state* st) {
    while (!data.empty()) {
        corio::result<std::size_t> sent = co_await conn->send_some(data);
        if (!sent) {
            connection_failed(st, "send", sent.error());
            co_return false;
        }
        data = data.subspan(*sent);
    }
    co_return true;
}

// ----- echo client -----

/// One connection's closed loop: keep `pipeline` messages in flight, check the echoed stream
/// byte for byte, time each message from its send to the arrival of its last byte.
corio::task<void> echo_client(net::tcp_stream* conn, std::size_t id, run_state* st) {
    const options& opt = *st->opt;
    const std::size_t size = opt.size;
    const std::size_t depth = opt.pipeline;
    const std::size_t shift = (id * 977) % k_period;
    std::vector<std::byte> in(std::min<std::size_t>(size * depth, 65536));
    std::vector<clock_type::time_point> sent_at(depth);
    std::uint64_t next_seq = 0; // messages sent
    std::uint64_t head_seq = 0; // messages fully received
    std::size_t head_off = 0;   // bytes of message head_seq received
    bool head_bad = false;      // message head_seq had a wrong byte
    bool broken = false;        // the stream can no longer be matched to what was sent

    while (!broken) {
        if (st->may_send() && next_seq - head_seq < depth) {
            std::size_t n = depth - static_cast<std::size_t>(next_seq - head_seq);
            clock_type::time_point t = clock_type::now();
            for (std::size_t k = 0; k < n; ++k)
                sent_at[(next_seq + k) % depth] = t;
            auto out = st->echo->window(next_seq * size, shift, n * size);
            next_seq += n;
            bool ok = co_await send_all(conn, out, st);
            if (!ok)
                break;
        }
        if (next_seq == head_seq)
            break; // stopping, and every reply is in
        corio::result<std::size_t> got = co_await conn->recv_some(in);
        if (!got) {
            connection_failed(st, "recv", got.error());
            break;
        }
        if (*got == 0) {
            st->note_error("recv: server closed the connection");
            break;
        }
        clock_type::time_point now = clock_type::now();
        std::span<const std::byte> chunk(in.data(), *got);
        while (!chunk.empty()) {
            if (head_seq == next_seq) { // bytes nobody asked for
                ++st->mismatches;
                st->note_error("echo: more bytes than were sent");
                broken = true;
                break;
            }
            std::size_t take = std::min(chunk.size(), size - head_off);
            auto expected = st->echo->window(head_seq * size + head_off, shift, take);
            head_bad |= std::memcmp(chunk.data(), expected.data(), take) != 0;
            chunk = chunk.subspan(take);
            head_off += take;
            if (head_off < size)
                continue;
            st->mismatches += head_bad;
            st->complete(sent_at[head_seq % depth], now, size);
            ++head_seq;
            head_off = 0;
            head_bad = false;
        }
    }
    corio::result<void> closed = co_await conn->close();
    (void)closed;
    --st->live;
}

// ----- files client -----

struct file_request {
    std::size_t file = 0;           // index into opt.files
    std::uint64_t offset = 0;       // asked-for range
    std::uint64_t expect = 0;       // bytes the reply must carry
    clock_type::time_point sent_at; // for the latency
};

std::uint64_t next_random(std::uint64_t& x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

file_request pick_request(const options& opt, std::uint64_t& rng) {
    file_request r;
    r.file = static_cast<std::size_t>(next_random(rng) % opt.files.size());
    const file_spec& f = opt.files[r.file];
    std::uint64_t length = f.size;
    if (opt.range_size > 0 && f.size > 0) {
        length = opt.range_size;
        std::uint64_t span = f.size > length ? f.size - length + 1 : 1;
        r.offset = next_random(rng) % span / opt.align * opt.align;
    }
    r.expect = r.offset >= f.size ? 0 : std::min(length, f.size - r.offset);
    return r;
}

void append_request(std::string& out, const options& opt, const file_request& r) {
    const file_spec& f = opt.files[r.file];
    std::uint64_t length = opt.range_size > 0 ? opt.range_size : f.size;
    char line[64];
    int n = std::snprintf(line, sizeof line, " %" PRIu64 " %" PRIu64 "\n", r.offset, length);
    out += "GET ";
    out += f.name;
    out.append(line, static_cast<std::size_t>(n));
}

/// Reads "OK <n>" into `n`; false for anything else.
bool parse_ok(std::string_view line, std::uint64_t& n) {
    if (!line.starts_with("OK "))
        return false;
    line.remove_prefix(3);
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
    return ec == std::errc{} && end == line.data() + line.size();
}

/// One connection's closed loop over GET requests: header line, then exactly n bytes, each
/// checked against the file's pattern. An ERR reply counts as an error and the loop goes on.
corio::task<void> files_client(net::tcp_stream* conn, std::size_t id, run_state* st) {
    const options& opt = *st->opt;
    const std::size_t depth = opt.pipeline;
    std::uint64_t rng = (opt.seed + id) * 0x9e3779b97f4a7c15ull | 1;
    std::vector<std::byte> in(65536);
    std::vector<file_request> queue(depth); // in flight, oldest at head % depth
    std::uint64_t next_seq = 0;
    std::uint64_t head_seq = 0;
    std::string out;
    std::string header;          // the reply line being collected
    bool in_body = false;        // reading the body of the head reply
    std::uint64_t body_left = 0; // its bytes still due
    std::uint64_t body_at = 0;   // file offset of the next body byte
    std::uint64_t body_len = 0;  // the length the server announced
    bool head_bad = false;       // a wrong byte or length in the head reply
    bool broken = false;         // protocol lost: stop

    while (!broken) {
        if (st->may_send() && next_seq - head_seq < depth) {
            out.clear();
            clock_type::time_point t = clock_type::now();
            for (; next_seq - head_seq < depth; ++next_seq) {
                file_request r = pick_request(opt, rng);
                r.sent_at = t;
                append_request(out, opt, r);
                queue[next_seq % depth] = r;
            }
            bool ok = co_await send_all(conn, std::as_bytes(std::span(out)), st);
            if (!ok)
                break;
        }
        if (next_seq == head_seq)
            break;
        corio::result<std::size_t> got = co_await conn->recv_some(in);
        if (!got) {
            connection_failed(st, "recv", got.error());
            break;
        }
        if (*got == 0) {
            st->note_error("recv: server closed the connection");
            break;
        }
        clock_type::time_point now = clock_type::now();
        std::span<const std::byte> chunk(in.data(), *got);
        while (!chunk.empty() && !broken) {
            if (head_seq == next_seq) {
                ++st->mismatches;
                st->note_error("files: bytes after the last reply");
                broken = true;
                break;
            }
            file_request& r = queue[head_seq % depth];
            if (!in_body) {
                const char* text = reinterpret_cast<const char*>(chunk.data());
                const void* nl = std::memchr(text, '\n', chunk.size());
                std::size_t take = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text) + 1
                                      : chunk.size();
                header.append(text, take);
                chunk = chunk.subspan(take);
                if (!nl) {
                    if (header.size() > 256) {
                        ++st->mismatches;
                        st->note_error("files: reply line longer than 256 bytes");
                        broken = true;
                    }
                    continue;
                }
                std::string_view line(header.data(), header.size() - 1);
                if (line.starts_with("ERR")) {
                    ++st->err_replies;
                    st->note_error("files: " + std::string(line));
                    st->complete(r.sent_at, now, 0);
                    ++head_seq;
                    header.clear();
                    continue;
                }
                if (!parse_ok(line, body_len)) {
                    ++st->mismatches;
                    st->note_error("files: bad reply line '" + std::string(line.substr(0, 64)) + "'");
                    broken = true;
                    break;
                }
                header.clear();
                head_bad = body_len != r.expect;
                body_left = body_len;
                body_at = r.offset;
                in_body = true;
            }
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), body_left));
            if (!head_bad)
                head_bad = !st->files->matches(chunk.first(take), body_at,
                                               opt.files[r.file].seed);
            chunk = chunk.subspan(take);
            body_left -= take;
            body_at += take;
            if (body_left > 0)
                continue;
            in_body = false;
            st->mismatches += head_bad;
            st->complete(r.sent_at, now, body_len);
            ++head_seq;
        }
    }
    corio::result<void> closed = co_await conn->close();
    (void)closed;
    --st->live;
}

// ----- key-value client -----

/// A request in flight: its key number, GET or SET, when it was sent.
struct kv_sent {
    std::uint64_t key = 0;
    bool set = false;
    clock_type::time_point sent_at;
};

/// The value every SET stores under key number k: a function of the key alone (a bijection of
/// its low 32 bits), so a GET's reply is checked whoever set the key. 9 bytes: within
/// std::string's small-string buffer on the server.
std::size_t kv_value(std::uint64_t key, char* out) {
    auto v = static_cast<std::uint32_t>(key * 2654435761u);
    return static_cast<std::size_t>(std::snprintf(out, 16, "v%08x", v));
}

void append_kv_request(std::string& out, const kv_sent& r) {
    char line[64];
    int n = std::snprintf(line, sizeof line, "%s k%" PRIu64, r.set ? "SET" : "GET", r.key);
    out.append(line, static_cast<std::size_t>(n));
    if (r.set) {
        out += ' ';
        std::size_t v = kv_value(r.key, line);
        out.append(line, v);
    }
    out += '\n';
}

/// True when `line` is a right reply to `r`: OK to a SET; to a GET, NONE (not set yet) or the
/// key's own value.
bool kv_reply_matches(std::string_view line, const kv_sent& r) {
    if (r.set)
        return line == "OK";
    if (line == "NONE")
        return true;
    char value[16];
    std::size_t n = kv_value(r.key, value);
    return line.starts_with("VALUE ") && line.substr(6) == std::string_view(value, n);
}

/// One connection's closed loop over GET/SET lines with uniformly random keys; every reply line
/// is checked (kv_reply_matches). An ERR reply counts as an error and the loop goes on.
corio::task<void> kv_client(net::tcp_stream* conn, std::size_t id, run_state* st) {
    const options& opt = *st->opt;
    const std::size_t depth = opt.pipeline;
    std::uint64_t rng = (opt.seed + id) * 0x9e3779b97f4a7c15ull | 1;
    std::vector<std::byte> in(65536);
    std::vector<kv_sent> queue(depth); // in flight, oldest at head % depth
    std::uint64_t next_seq = 0;
    std::uint64_t head_seq = 0;
    std::string out;
    std::string line; // the reply line being collected
    bool broken = false;

    while (!broken) {
        if (st->may_send() && next_seq - head_seq < depth) {
            out.clear();
            clock_type::time_point t = clock_type::now();
            for (; next_seq - head_seq < depth; ++next_seq) {
                kv_sent r;
                r.key = next_random(rng) % opt.keys;
                r.set = next_random(rng) % 100 < opt.set_percent;
                r.sent_at = t;
                append_kv_request(out, r);
                queue[next_seq % depth] = r;
            }
            bool ok = co_await send_all(conn, std::as_bytes(std::span(out)), st);
            if (!ok)
                break;
        }
        if (next_seq == head_seq)
            break;
        corio::result<std::size_t> got = co_await conn->recv_some(in);
        if (!got) {
            connection_failed(st, "recv", got.error());
            break;
        }
        if (*got == 0) {
            st->note_error("recv: server closed the connection");
            break;
        }
        clock_type::time_point now = clock_type::now();
        std::string_view chunk(reinterpret_cast<const char*>(in.data()), *got);
        while (!chunk.empty()) {
            std::size_t nl = chunk.find('\n');
            line.append(chunk.substr(0, nl));
            if (nl == std::string_view::npos) {
                if (line.size() > 256) {
                    ++st->mismatches;
                    st->note_error("kv: reply line longer than 256 bytes");
                    broken = true;
                }
                break;
            }
            chunk.remove_prefix(nl + 1);
            if (head_seq == next_seq) {
                ++st->mismatches;
                st->note_error("kv: a reply nobody asked for");
                broken = true;
                break;
            }
            const kv_sent& r = queue[head_seq % depth];
            if (line.starts_with("ERR")) {
                ++st->err_replies;
                st->note_error("kv: " + line);
            } else if (!kv_reply_matches(line, r)) {
                ++st->mismatches;
                st->note_error("kv: wrong reply '" + line.substr(0, 64) + "' for key k" +
                               std::to_string(r.key));
            }
            st->complete(r.sent_at, now, line.size() + 1);
            ++head_seq;
            line.clear();
        }
    }
    corio::result<void> closed = co_await conn->close();
    (void)closed;
    --st->live;
}

// ----- the server's counters from /proc -----

struct proc_sample {
    bool ok = false;
    double cpu_s = 0;            // utime + stime of the server process
    double core_busy_s = 0;      // busy time of --server-cpu (softirq included)
    long rss_kb = -1;            // VmRSS
    long threads = -1;           // Threads
    long voluntary_cs = -1;      // voluntary_ctxt_switches (summed over threads)
    long involuntary_cs = -1;    // nonvoluntary_ctxt_switches
    long long allocs = -1;       // heap allocations so far (bench/lab/alloc_counter.cpp)
};

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

long status_field(const std::string& status, std::string_view key) {
    std::size_t at = status.find(key);
    if (at == std::string::npos)
        return -1;
    return std::strtol(status.c_str() + at + key.size(), nullptr, 10);
}

/// The count bench/lab/alloc_counter.cpp keeps in `path` (one uint64), or -1.
long long read_alloc_counter(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    std::uint64_t count = 0;
    ssize_t n = ::pread(fd, &count, sizeof count, 0);
    ::close(fd);
    return n == static_cast<ssize_t>(sizeof count) ? static_cast<long long>(count) : -1;
}

/// NOTE: a few small /proc reads on the loop thread, only at the two phase boundaries.
proc_sample sample_server(const options& opt) {
    proc_sample s;
    if (!opt.server_alloc_counter.empty())
        s.allocs = read_alloc_counter(opt.server_alloc_counter);
    if (opt.server_pid <= 0)
        return s;
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::string dir = "/proc/" + std::to_string(opt.server_pid);
    std::string stat = read_text(dir + "/stat");
    std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos)
        return s;
    std::istringstream fields(stat.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) { // fields 14 and 15: utime, stime
        if (i == 14)
            utime = std::stoull(field);
        if (i == 15)
            stime = std::stoull(field);
    }
    s.cpu_s = static_cast<double>(utime + stime) / tick;
    std::string status = read_text(dir + "/status");
    s.rss_kb = status_field(status, "VmRSS:");
    s.threads = status_field(status, "Threads:");
    // The process's status shows the main thread's switches only; sum the threads' (cheap
    // enough at the phase boundaries, also with 10,000 threads).
    long vol = 0;
    long invol = 0;
    std::string tasks = dir + "/task/";
    if (DIR* threads = ::opendir(tasks.c_str())) {
        while (const dirent* entry = ::readdir(threads)) {
            if (entry->d_name[0] == '.')
                continue;
            std::string ts = read_text(tasks + entry->d_name + "/status");
            vol += std::max(0L, status_field(ts, "\nvoluntary_ctxt_switches:"));
            invol += std::max(0L, status_field(ts, "nonvoluntary_ctxt_switches:"));
        }
        ::closedir(threads);
    }
    s.voluntary_cs = vol;
    s.involuntary_cs = invol;
    if (opt.server_cpu >= 0) {
        std::istringstream lines(read_text("/proc/stat"));
        std::string line;
        std::string want = "cpu" + std::to_string(opt.server_cpu) + " ";
        while (std::getline(lines, line)) {
            if (!line.starts_with(want))
                continue;
            std::istringstream v(line.substr(want.size()));
            unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0,
                               softirq = 0, steal = 0;
            v >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
            s.core_busy_s =
                static_cast<double>(user + nice + system + irq + softirq + steal) / tick;
        }
    }
    s.ok = true;
    return s;
}

// ----- the run -----

corio::task<corio::result<net::tcp_stream>> connect_one(net::socket_address peer,
                                                        std::chrono::milliseconds limit) {
    auto op = net::tcp_stream::connect(peer, limit);
    corio::result<net::tcp_stream> conn = co_await op;
    co_return conn;
}

struct connect_report {
    std::size_t failed = 0;     // attempts that failed
    std::string first_error;    // why the first one failed
    bool fd_capped = false;     // fewer attempted than asked: RLIMIT_NOFILE
};

/// Opens up to opt.connections streams, `connect_batch` at a time. Stops early when a whole
/// batch fails (the server or the fd table is full: more attempts would fail the same way).
corio::task<void> connect_all(net::socket_address peer, const options* opt,
                              std::vector<net::tcp_stream>* streams, connect_report* report) {
    std::size_t want = opt->connections;
    rlimit fds{};
    if (::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY) {
        std::size_t room = fds.rlim_cur > 64 ? static_cast<std::size_t>(fds.rlim_cur) - 64 : 0;
        if (want > room) {
            want = room;
            report->fd_capped = true;
        }
    }
    streams->reserve(want);
    while (streams->size() < want) {
        std::size_t n = std::min(opt->connect_batch, want - streams->size());
        std::vector<corio::task<corio::result<net::tcp_stream>>> batch;
        batch.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            batch.push_back(connect_one(peer, opt->connect_timeout));
        auto all = corio::when_all(std::move(batch));
        std::vector<corio::result<net::tcp_stream>> done = co_await all;
        std::size_t opened = 0;
        for (corio::result<net::tcp_stream>& c : done) {
            if (c) {
                streams->push_back(std::move(*c));
                ++opened;
                continue;
            }
            if (report->failed++ == 0)
                report->first_error = "connect: " + c.error().message();
        }
        if (opened == 0)
            break;
    }
}

std::string json_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\';
        if (static_cast<unsigned char>(c) < 0x20)
            c = ' ';
        out += c;
    }
    return out;
}

corio::task<void> join(corio::task_scope* scope) { co_await scope->join(); }

corio::task<int> run(options opt) {
    std::string where = opt.host.find(':') != std::string::npos ? "[" + opt.host + "]" : opt.host;
    corio::result<net::socket_address> peer =
        net::socket_address::parse(where + ":" + std::to_string(opt.port));
    if (!peer) {
        std::fprintf(stderr, "loadgen: --host %s: %s\n", opt.host.c_str(),
                     peer.error().message().c_str());
        co_return 2;
    }

    std::vector<net::tcp_stream> streams;
    connect_report connected;
    clock_type::time_point connect_start = clock_type::now();
    corio::task<void> connecting = connect_all(*peer, &opt, &streams, &connected);
    co_await std::move(connecting);
    double connect_s = std::chrono::duration<double>(clock_type::now() - connect_start).count();

    std::size_t window = std::max<std::size_t>(opt.size * opt.pipeline, 65536);
    echo_pattern echo(opt.mode == job::echo ? window : 0);
    file_pattern files;
    run_state st;
    st.opt = &opt;
    st.echo = &echo;
    st.files = &files;

    corio::task_scope clients;
    for (std::size_t i = 0; i < streams.size(); ++i) {
        ++st.live;
        if (opt.mode == job::echo)
            clients.spawn(echo_client(&streams[i], i, &st));
        else if (opt.mode == job::files)
            clients.spawn(files_client(&streams[i], i, &st));
        else
            clients.spawn(kv_client(&streams[i], i, &st));
    }

    // Phases: warm-up, measured, then stop sending and drain. Polled every few milliseconds so
    // a run whose clients all ended (or hit --max-requests) finishes early.
    using seconds = std::chrono::duration<double>;
    auto started = clock_type::now();
    auto warm_end = started + std::chrono::duration_cast<clock_type::duration>(seconds(opt.warmup_s));
    auto measure_start = warm_end;
    auto measure_end = warm_end;
    proc_sample before;
    proc_sample after;
    rusage self_before{};
    rusage self_after{};
    for (;;) {
        clock_type::time_point now = clock_type::now();
        bool over = st.live == 0 || (opt.max_requests != 0 && st.replies >= opt.max_requests);
        // The samples block the loop (no reply is counted meanwhile), so the measured window
        // opens after the first one and closes before the second one.
        if (st.now == phase::warmup && (now >= warm_end || over)) {
            before = sample_server(opt);
            ::getrusage(RUSAGE_SELF, &self_before);
            st.now = phase::measure;
            measure_start = clock_type::now();
            measure_end = measure_start + std::chrono::duration_cast<clock_type::duration>(
                                              seconds(opt.duration_s));
        }
        if (st.now == phase::measure && (now >= measure_end || over)) {
            measure_end = clock_type::now();
            st.now = phase::stop;
            after = sample_server(opt);
            ::getrusage(RUSAGE_SELF, &self_after);
            break;
        }
        clock_type::time_point next = st.now == phase::warmup ? warm_end : measure_end;
        auto nap = std::min<clock_type::duration>(next - now, 20ms);
        corio::result<void> slept = co_await corio::sleep_for(nap);
        (void)slept;
    }
    auto draining = corio::timeout(join(&clients), opt.grace);
    corio::result<void> drained = co_await std::move(draining);
    std::size_t cut = drained ? 0 : st.live;

    double seconds_measured = std::chrono::duration<double>(measure_end - measure_start).count();
    auto cpu = [](const rusage& r) {
        return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
               static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
    };
    std::string mode = opt.mode == job::echo ? "echo" : opt.mode == job::files ? "files" : "kv";
    std::printf("{\"mode\":\"%s\",\"connections_requested\":%zu,\"connections_open\":%zu,"
                "\"connect_failures\":%zu,\"fd_capped\":%s,\"connect_seconds\":%.3f,"
                "\"size\":%zu,\"pipeline\":%u,\"warmup_requests\":%" PRIu64 ","
                "\"requests\":%" PRIu64 ",\"seconds\":%.6f,\"rps\":%.1f,"
                "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,"
                "\"errors\":%" PRIu64 ",\"err_replies\":%" PRIu64 ",\"mismatches\":%" PRIu64 ","
                "\"bytes\":%" PRIu64 ",\"cut_at_end\":%zu,\"client_cpu_s\":%.4f",
                mode.c_str(), opt.connections, streams.size(), connected.failed,
                connected.fd_capped ? "true" : "false", connect_s,
                opt.mode == job::echo ? opt.size : std::size_t{0}, opt.pipeline,
                st.warmup_requests, st.requests, seconds_measured,
                seconds_measured > 0 ? static_cast<double>(st.requests) / seconds_measured : 0.0,
                st.latency.quantile_us(0.50), st.latency.quantile_us(0.99),
                st.latency.quantile_us(0.999), st.latency.quantile_us(1.0), st.errors,
                st.err_replies, st.mismatches, st.bytes, cut, cpu(self_after) - cpu(self_before));
    if (before.ok && after.ok) {
        std::printf(",\"server_cpu_s\":%.4f,\"server_rss_kb\":%ld,\"server_threads\":%ld,"
                    "\"server_voluntary_cs\":%ld,\"server_involuntary_cs\":%ld",
                    after.cpu_s - before.cpu_s, after.rss_kb, after.threads,
                    after.voluntary_cs - before.voluntary_cs,
                    after.involuntary_cs - before.involuntary_cs);
        if (opt.server_cpu >= 0)
            std::printf(",\"core_busy_s\":%.4f", after.core_busy_s - before.core_busy_s);
        if (before.allocs >= 0 && after.allocs >= 0)
            std::printf(",\"server_allocs\":%lld", after.allocs - before.allocs);
    }
    std::string first = !connected.first_error.empty() && st.first_error.empty()
                            ? connected.first_error
                            : st.first_error;
    std::printf(",\"first_error\":\"%s\"}\n", json_escape(first).c_str());
    std::fflush(stdout);
    co_return streams.empty() ? 1 : 0;
}

// ----- command line -----

// What --help prints after the options.
constexpr const char* k_notes =
    "  Closed loop: each connection keeps D requests in flight. Every reply byte is checked.\n"
    "  Prints one JSON line (requests, rps, p50/p99/p99.9 us, errors, mismatches, ...).\n"
    "  Numbers take a binary suffix: 4k = 4096, 1M, 1G.\n"
    "  Key-value: `GET kN` / `SET kN vXXXXXXXX` lines (the value a function of N); a GET must\n"
    "  return NONE or that value.\n"
    "  Files: byte i of NAME is (i%256*131 + 17b + 101(b>>8) + 7(b>>16) + fnv1a(NAME))\n"
    "  mod 256, b = i/256 (bench/lab/run.py creates such files).";

/// `text` as a whole number with an optional binary suffix (k/K, m/M, g/G: 1024, 1024^2,
/// 1024^3) in [min, max]; nullopt for anything else.
std::optional<std::uint64_t> scaled(std::string_view text, std::uint64_t min, std::uint64_t max) {
    std::uint64_t scale = 1;
    if (!text.empty()) {
        switch (text.back()) {
        case 'k':
        case 'K':
            scale = 1024;
            break;
        case 'm':
        case 'M':
            scale = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            scale = 1024ull * 1024 * 1024;
            break;
        default:
            break;
        }
    }
    if (scale != 1)
        text.remove_suffix(1);
    std::optional<unsigned long long> v = cli::parse_unsigned(text, 0, max / scale);
    if (!v || *v * scale < min)
        return std::nullopt;
    return *v * scale;
}

/// The check of a scaled number: scaled() in [min, max], rewritten to its plain digits.
cli::check_fn scaled_check(std::uint64_t min, std::uint64_t max) {
    return [min, max](std::string& text) -> std::string {
        std::optional<std::uint64_t> v = scaled(text, min, max);
        if (!v)
            return "wants a number " + cli::range_text(min, max) + ", got '" + text + "'";
        text = std::to_string(*v);
        return {};
    };
}

/// An option `flag` stored into `target` (any integer type) as a scaled number in [min, max];
/// the help shows target's value as the default unless `show_default` is false.
template <class T>
cli::option add_scaled(cli::parser& p, const std::string& flag, T& target, std::uint64_t min,
                       std::uint64_t max, const std::string& help, bool show_default = true) {
    auto store = [&target](const std::string& digits) {
        target = static_cast<T>(cli::parse_unsigned(digits, 0, ~0ULL).value());
    };
    return p
        .add(flag, help + " " + cli::help_range(min, max), scaled_check(min, max), store,
             show_default ? std::to_string(target) : std::string())
        .type("N");
}

/// An option `flag` in whole milliseconds up to `max` (a scaled number, as before).
cli::option add_ms(cli::parser& p, const std::string& flag, std::chrono::milliseconds& target,
                   std::uint64_t max, const std::string& help) {
    auto store = [&target](const std::string& digits) {
        target = std::chrono::milliseconds(cli::parse_unsigned(digits, 0, ~0ULL).value());
    };
    return p
        .add(flag, help + " " + cli::help_range(0, max), scaled_check(0, max), store,
             std::to_string(target.count()))
        .type("MS");
}

/// An option `flag` in seconds (a decimal fraction allowed) in [0, 86400].
cli::option add_seconds(cli::parser& p, const std::string& flag, double& target,
                        const std::string& help) {
    auto check = [](std::string& text) -> std::string {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !(v >= 0) || v > 86400)
            return "wants seconds in [0, 86400], got '" + text + "'";
        return {};
    };
    auto store = [&target](const std::string& text) {
        target = std::strtod(text.c_str(), nullptr);
    };
    char shown[32];
    std::snprintf(shown, sizeof shown, "%g", target);
    return p.add(flag, help, check, store, shown).type("SECONDS");
}

/// The value of --files: NAME:SIZE items separated by commas (SIZE a scaled number).
std::vector<file_spec> parse_files(const cli::parser& p, std::string_view text) {
    std::vector<file_spec> files;
    while (!text.empty()) {
        std::size_t comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        std::size_t colon = item.rfind(':');
        if (colon == std::string_view::npos || colon == 0)
            p.fail("--files wants NAME:SIZE items, got '" + std::string(item) + "'");
        std::string_view name = item.substr(0, colon);
        if (name.find_first_of(" \n\r\t") != std::string_view::npos)
            p.fail("--files: file names cannot contain white space");
        std::string_view size_text = item.substr(colon + 1);
        std::optional<std::uint64_t> size = scaled(size_text, 0, std::uint64_t{1} << 40);
        if (!size)
            p.fail("--files wants sizes " + cli::range_text(0, std::uint64_t{1} << 40) + ", got '" +
                   std::string(size_text) + "'");
        files.push_back({std::string(name), *size, file_seed(name)});
    }
    return files;
}

options parse_args(int argc, char** argv) {
    options opt;
    std::string mode = "echo";
    std::string files;
    cli::parser p("loadgen",
                  "The laboratory's closed-loop load generator (echo, file or key-value requests).",
                  k_notes);
    p.text("--host", opt.host, "server address (an IPv4/IPv6 literal)").type("ADDR");
    add_scaled(p, "--port", opt.port, 1, 65535, "server port", false).required();
    add_scaled(p, "--connections", opt.connections, 0, 1'000'000, "connections to open").type("C");
    add_scaled(p, "--pipeline", opt.pipeline, 1, 4096, "requests in flight per connection")
        .type("D");
    add_seconds(p, "--warmup", opt.warmup_s, "seconds before measuring");
    add_seconds(p, "--duration", opt.duration_s, "measured seconds");
    add_scaled(p, "--max-requests", opt.max_requests, 0, ~std::uint64_t{0},
               "total replies after which sending stops; 0: no limit");
    p.word(
         "--mode", {"echo", "files", "kv"}, [&mode](const std::string& m) { mode = m; },
         "echo messages, file-range requests, or key-value GET/SET lines")
        .default_text("echo");
    add_scaled(p, "--size", opt.size, 1, 1 << 24, "echo: bytes per message").type("BYTES");
    p.text("--files", files, "files: what the server has (needed with --mode files)")
        .type("NAME:SIZE,...");
    add_scaled(p, "--range-size", opt.range_size, 0, std::uint64_t{1} << 32,
               "files: bytes per request; 0: whole files")
        .type("B");
    add_scaled(p, "--align", opt.align, 1, 1 << 24, "files: offsets are multiples of this")
        .type("A");
    add_scaled(p, "--server-pid", opt.server_pid, 0, 1 << 30,
               "adds the server's CPU seconds, RSS, threads and context switches over the "
               "measured phase",
               false)
        .type("PID");
    add_scaled(p, "--server-cpu", opt.server_cpu, 0, 4096,
               "adds that core's busy seconds (softirq included)", false)
        .type("CPU");
    p.text("--server-alloc-counter", opt.server_alloc_counter,
           "adds the server's heap allocations (bench/lab/alloc_counter.cpp)")
        .type("FILE");
    add_scaled(p, "--connect-batch", opt.connect_batch, 1, 65536, "connects in flight at once");
    add_ms(p, "--connect-timeout-ms", opt.connect_timeout, 600'000, "per connect attempt");
    add_ms(p, "--grace-ms", opt.grace, 600'000, "after the measured phase: time to drain replies");
    add_scaled(p, "--seed", opt.seed, 0, ~std::uint64_t{0}, "request choice (files, kv)");
    add_scaled(p, "--keys", opt.keys, 1, std::uint64_t{1} << 40,
               "kv: keys k0..k<N-1>, each request's chosen uniformly");
    add_scaled(p, "--set-percent", opt.set_percent, 0, 100, "kv: SETs among the requests");
    add_scaled(p, "--sq-entries", opt.sq_entries, 0, 32768, "io_uring SQ entries");
    add_scaled(p, "--cq-entries", opt.cq_entries, 0, 65536, "io_uring CQ entries");
    p.parse(argc, argv);
    opt.mode = mode == "files" ? job::files : mode == "kv" ? job::kv : job::echo;
    opt.files = parse_files(p, files);
    if (opt.mode == job::files && opt.files.empty())
        p.fail("--mode files needs --files NAME:SIZE,...");
    // The whole pipeline of echo messages is sent before any reply is read: keep it within
    // what the socket buffers hold, or client and server would both block on full buffers.
    if (opt.mode == job::echo && opt.size * opt.pipeline > (1u << 20))
        p.fail("--size x --pipeline must stay within 1 MiB");
    return opt;
}

/// Raises the soft fd limit to the hard one: 10,000 connections need 10,000 fds.
void raise_fd_limit() {
    rlimit fds{};
    if (::getrlimit(RLIMIT_NOFILE, &fds) != 0 || fds.rlim_cur == fds.rlim_max)
        return;
    fds.rlim_cur = fds.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &fds);
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse_args(argc, argv);
    raise_fd_limit();
    try {
        corio::io_context ctx({.sq_entries = opt.sq_entries,
                               .cq_entries = std::max(opt.cq_entries, 2 * opt.sq_entries)});
        return corio::sync_wait(ctx, run(opt));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "loadgen: %s\n", e.what());
        return 1;
    }
}
