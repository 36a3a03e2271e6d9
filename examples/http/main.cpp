// SPDX-License-Identifier: MIT
// corio-http: an HTTP/1.1 static file server on corio. GET and HEAD, keep-alive and pipelining,
// single byte ranges, files of any size, If-Modified-Since, a document root the kernel keeps
// requests inside (openat2 RESOLVE_BENEATH), and every file operation through the ring.
// Each connection is one coroutine that reads like the blocking version. Small files are served
// from a bounded in-memory cache revalidated once per --cache-validity-ms (see file_cache.hpp).
// Requests are read through a provided-buffer ring (multishot recv, --provided-buffers 512 by
// default): an idle keep-alive connection holds no input buffer (3.3 KB in all per idle
// connection against 6.9 KB with --provided-buffers 0, a 4 KiB buffer each; docs/servers.md).
// Choices: a traversal attempt (.., %2F, \, NUL) is 400, a symlink leading outside 403, a missing
// file 404; request bodies are skipped (413 past --max-body), Transfer-Encoding is 501; several
// ranges in one Range get the whole body (200); timeouts are deadlines checked by one sweep task.
// --shards N runs N such servers, each on its own loop, SO_REUSEPORT listener and cache
// (examples/common/shards.hpp); --cpus pins them.
// Try: build/debug/examples/http/corio-http --root DIR --port 0   (prints `listening on PORT`),
//      curl -v http://127.0.0.1:PORT/   and   kill -USR1 <pid>   for a stats line.
#include <corio/corio.hpp>
#include "examples/common/cli.hpp"
#include "examples/common/listen.hpp"
#include "examples/common/open_fds.hpp"
#include "examples/common/shards.hpp"
#include "examples/common/stop_signals.hpp"
#include "examples/http/file_cache.hpp"
#include "examples/http/http_date.hpp"
#include "examples/http/mime.hpp"
#include "examples/http/path_jail.hpp"
#include "examples/http/range.hpp"
#include "examples/http/request_parser.hpp"
#include "examples/http/response.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace net = corio::net;
using namespace corio_http;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

struct options {
    std::string bind = "127.0.0.1";      // address to listen on
    std::uint16_t port = 8080;           // 0: an ephemeral port, printed
    std::string root;                    // the document root (required)
    std::string index = "index.html";    // served for a directory; "" : directories are 403
    unsigned sq_entries = 1024;          // io_uring submission queue size
    unsigned cq_entries = 0;             // completion queue size (0: kernel default, 2 x SQ)
    std::size_t max_connections = 10000; // beyond this, new connections are closed at once
    std::chrono::milliseconds header_timeout = 10s;    // a request head must arrive within this
    std::chrono::milliseconds keepalive_timeout = 15s; // an idle keep-alive connection lasts this
    std::chrono::milliseconds send_timeout = 30s;      // a peer not reading for this is dropped
    std::chrono::milliseconds drain = 5s;              // on SIGINT/SIGTERM: time to finish
    std::chrono::milliseconds linger_timeout = 1000ms; // closing: wait this for the client's FIN
    parse_limits limits;                               // request line, header count and bytes, body
    std::size_t cache_bytes = 32u << 20;               // the small-file cache's bound (0: no cache)
    std::size_t cache_max_file = 256u << 10;           // larger files are always read from disk
    std::chrono::milliseconds cache_validity = 1000ms; // a cached file is rechecked after this
    unsigned provided_buffers = 512; // >0: requests are read through a ring of this many buffers
                                     // per shard; 0: a buffer per connection
    std::uint32_t provided_buffer_size = 4096;         // bytes of each ring buffer
    example::shard_flags shards;                       // --shards, --cpus
};

/// One connection as the server sees it, for timeouts (a sweep closes the late ones). Being idle
/// (the graceful stop closes those at once) is told to net::server.
struct connection_entry {
    int fd = -1;                      // the socket (owned by the connection's task)
    steady::time_point deadline;      // when the sweep shuts it down
    bool timed_out = false;           // the sweep shut it down
    std::size_t buffered = 0;         // bytes of its own input buffer (for the stats)
    connection_entry* prev = nullptr; // neighbours in server_state's list
    connection_entry* next = nullptr;
};

struct server_state {
    explicit server_state(const options& o)
        : opt(o), cache(o.cache_bytes, o.cache_max_file, o.cache_validity) {}

    const options& opt;
    int root_fd = -1;                      // the document root, O_PATH|O_DIRECTORY
    file_cache cache;                      // small files in memory
    net::buffer_ring* ring = nullptr;      // with --provided-buffers: where requests are read
    date_cache dates;                      // the Date value, once per second
    connection_entry* head = nullptr;      // every open connection
    net::server* front = nullptr;          // accepts and drains; counts connections, timeouts
    std::uint64_t linger_timeouts = 0;     // closed without the client's FIN (--linger-timeout-ms)
    std::uint64_t requests = 0;            // complete request heads
    std::uint64_t by_class[6] = {};        // responses by status class (index 2..5)
    std::uint64_t cache_hits = 0;          // served from memory without a check
    std::uint64_t cache_revalidated = 0;   // checked, unchanged, served from memory
    std::uint64_t cache_misses = 0;        // read from disk

    void link(connection_entry* c) noexcept {
        c->next = head;
        if (head)
            head->prev = c;
        head = c;
    }
    void unlink(connection_entry* c) noexcept {
        if (c->prev)
            c->prev->next = c->next;
        else
            head = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    /// Shuts a connection's socket down: its pending recv or send completes at once (with 0 or
    /// EPIPE) and its task closes it. A plain shutdown(2) never blocks.
    static void kick(connection_entry* c) noexcept {
        if (c->fd >= 0)
            ::shutdown(c->fd, SHUT_RDWR);
    }
};

int open_error_status(std::error_code e) {
    switch (static_cast<std::errc>(e.value())) {
    case std::errc::no_such_file_or_directory:
    case std::errc::not_a_directory:
    case std::errc::filename_too_long:
        return 404;
    case std::errc::cross_device_link: // a symlink (or "..") leading outside the root
    case std::errc::too_many_symbolic_link_levels:
    case std::errc::permission_denied:
    case std::errc::operation_not_permitted:
        return 403;
    case std::errc::too_many_files_open:
    case std::errc::too_many_files_open_in_system:
        return 503;
    default:
        return 500;
    }
}

file_identity identity_of(const corio::file_status& st) {
    return {(std::uint64_t{st.stx_dev_major} << 32) | st.stx_dev_minor, st.stx_ino, st.stx_size,
            st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec};
}

/// A file opened for a request: the regular file to serve (the index of a directory), or the
/// status to answer instead.
struct opened_file {
    int status = 0;          // 0: `f` is open and regular
    corio::file f;           // the file
    corio::file_status st{}; // its statx
    std::string served_path; // the path actually served (for the Content-Type)
};

constexpr unsigned k_statx_mask = STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME | STATX_INO;
constexpr int k_open_flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

corio::task<void> close_file(corio::file* f) {
    corio::result<void> closed = co_await f->close();
    (void)closed; // a read-only file: nothing to lose
}

/// Opens `rel` below the root with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the kernel
/// refuses ".." above the root, absolute paths and symlinks leading outside (EXDEV: 403).
/// O_NONBLOCK: opening a FIFO must not hang; it is cleared on a regular file, because io_uring
/// turns O_NONBLOCK reads into EAGAIN instead of waiting for the disk. A directory named without
/// its trailing slash is answered 301 (so that relative links in its index resolve), a file named
/// with one is 404 (ENOTDIR), as nginx does.
corio::task<opened_file> open_target(const server_state* srv, std::string rel,
                                     bool trailing_slash) {
    opened_file out;
    std::string path = rel.empty() ? std::string(".") : trailing_slash ? rel + "/" : rel;
    auto open = corio::file::open_beneath(srv->root_fd, path, k_open_flags);
    corio::result<corio::file> f = co_await open;
    if (!f) {
        out.status = open_error_status(f.error());
        co_return out;
    }
    out.f = std::move(*f);
    auto stat = out.f.statx(k_statx_mask);
    corio::result<corio::file_status> st = co_await stat;
    if (st && S_ISDIR(st->stx_mode)) {
        co_await close_file(&out.f);
        if (!trailing_slash && !rel.empty()) {
            out.status = 301;
            co_return out;
        }
        if (srv->opt.index.empty()) {
            out.status = 403;
            co_return out;
        }
        path = rel.empty() ? srv->opt.index : rel + "/" + srv->opt.index;
        auto open_index = corio::file::open_beneath(srv->root_fd, path, k_open_flags);
        corio::result<corio::file> index = co_await open_index;
        if (!index) {
            int status = open_error_status(index.error());
            out.status = status == 404 ? 403 : status; // a directory without an index
            co_return out;
        }
        out.f = std::move(*index);
        auto stat_index = out.f.statx(k_statx_mask);
        st = co_await stat_index;
    }
    if (!st || !S_ISREG(st->stx_mode)) {
        out.status = st ? 403 : 500; // FIFOs, devices, sockets, a directory as index
        co_await close_file(&out.f);
        co_return out;
    }
    ::fcntl(out.f.native_handle(), F_SETFL, 0); // clears O_NONBLOCK (never blocks)
    out.st = *st;
    out.served_path = std::move(path);
    co_return out;
}

/// What a response to one request is, once the file is known.
struct plan {
    response_head head;
    std::uint64_t body_offset = 0; // first byte of the body to send
    std::uint64_t body_length = 0; // bytes of the body to send (0 for HEAD, 304, 416)
};

/// Status, ranges and conditions for a file of `size` bytes modified at `mtime`.
plan plan_response(const request& r, std::uint64_t size, std::int64_t mtime,
                   std::string_view last_modified, std::string_view type, bool keep_alive) {
    plan p;
    p.head.content_type = type;
    p.head.last_modified = last_modified;
    p.head.accept_ranges = true;
    p.head.keep_alive = keep_alive;
    p.head.content_length = size;
    if (!r.if_modified_since.empty() && r.range.empty()) {
        std::optional<std::int64_t> since = parse_http_date(r.if_modified_since);
        if (since && mtime <= *since) {
            p.head.status = 304;
            return p;
        }
    }
    byte_range range;
    if (!r.range.empty() && (r.if_range.empty() || r.if_range == last_modified))
        range = parse_range(r.range, size);
    if (range.what == byte_range::kind::unsatisfiable) {
        p.head.status = 416;
        p.head.content_type = {};
        p.head.content_length = 0;
        p.head.range = response_head::range_kind::unsatisfiable;
        p.head.range_total = size;
        return p;
    }
    p.body_length = size;
    if (range.what == byte_range::kind::satisfiable) {
        p.head.status = 206;
        p.head.range = response_head::range_kind::partial;
        p.head.range_first = range.first;
        p.head.range_last = range.last;
        p.head.range_total = size;
        p.head.content_length = range.length();
        p.body_offset = range.first;
        p.body_length = range.length();
    }
    if (r.method == method::head)
        p.body_length = 0;
    return p;
}

// ----- one connection -----

/// The connection's task and state. Requests are read through a multishot recv into the shard's
/// ring (the default) and parsed straight from each chunk (a buffer_lease): m_in holds only a
/// request head split across chunks, so an idle connection holds no input buffer at all. With
/// --provided-buffers 0 they are read into a buffer of its own (m_in, 4 KiB from the accept on).
/// Responses are queued in an output batch (heads and small bodies copied into one buffer, larger
/// cached bodies by reference) and sent with gathering send_all calls; a file too large for the
/// cache is streamed after the batch with send_file_range.
class connection {
public:
    connection(net::tcp_stream conn, net::server::connection* ctx, server_state* srv)
        : m_conn(std::move(conn)), m_ctx(ctx), m_srv(srv), m_parser(srv->opt.limits) {
        m_entry.fd = m_conn.native_handle();
        m_header_deadline = steady::now() + srv->opt.header_timeout;
        m_entry.deadline = m_header_deadline; // the first request is due from the accept on
        if (srv->ring == nullptr) {
            m_in.resize(k_initial_buffer);
            m_data = m_in.data();
            m_entry.buffered = m_in.capacity();
        }
        const parse_limits& l = srv->opt.limits;
        // Room for the largest head the parser accepts (it refuses one before it outgrows this).
        m_max_buffer = l.max_request_line + l.max_header_bytes + 64;
        srv->link(&m_entry);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { m_srv->unlink(&m_entry); }

    corio::task<void> run();

private:
    static constexpr std::size_t k_initial_buffer = 4096;
    static constexpr std::size_t k_copy_body_max = 2048; // smaller bodies are copied into the batch
    static constexpr std::size_t k_batch_max = 64 * 1024;     // flush the batch beyond this
    static constexpr std::uint64_t k_stream_chunk = 4u << 20; // send_file_range call size

    struct segment {
        std::size_t offset = 0; // into m_out (when body is null) or into *body
        std::size_t length = 0;
        std::shared_ptr<const std::string> body; // a cached body sent by reference
    };

    corio::task<bool> process_buffer();
    corio::task<bool> read_into_buffer();
    corio::task<bool> read_from_ring(net::recv_stream* chunks);
    bool keep_partial_head(bool from_lease);
    void before_wait(bool idle);
    void after_arrival() noexcept;
    corio::task<bool> serve_request(const request* r);
    corio::task<bool> flush();
    corio::task<bool> send_fully();
    corio::task<bool> stream_file(const corio::file* f, std::uint64_t offset, std::uint64_t length);
    corio::task<void> linger_close(net::recv_stream* chunks);
    corio::task<void> close(net::recv_stream* chunks, bool orderly);
    bool serve_cached(const request& r, const std::string& key);
    void queue_cached(const request& r, const cached_file& c);
    void queue_error(int status, bool keep_alive, bool head_only = false);
    void queue_redirect(const request& r, bool keep_alive, bool head_only);
    void queue_text(std::string_view text);
    void note_appended(std::size_t before);
    void queue_body(std::shared_ptr<const std::string> body, std::size_t offset,
                    std::size_t length);
    void count(int status) noexcept { ++m_srv->by_class[std::clamp(status / 100, 0, 5)]; }
    bool keep_alive(const request& r) const noexcept {
        return r.keep_alive && !m_ctx->is_draining();
    }
    /// Before the close: the fd number may be reused by the next accept at once, so the sweep
    /// and the stop must no longer shut it down.
    void forget_fd() noexcept {
        m_entry.fd = -1;
        m_ctx->set_idle(false);
    }
    void set_send_deadline() noexcept {
        m_entry.deadline = steady::now() + m_srv->opt.send_timeout;
    }

    net::tcp_stream m_conn;   // the socket
    net::server::connection* m_ctx; // its place in net::server (idle, draining, timeouts)
    server_state* m_srv;      // the server it belongs to
    connection_entry m_entry; // its place in the server's list
    request_parser m_parser;  // the request head being parsed
    std::vector<char> m_in;   // own input buffer; in ring mode only a head split across chunks
    const char* m_data = nullptr; // what process_buffer() parses: m_in, or the current lease
    std::size_t m_begin = 0;      // [m_begin, m_end) of m_data: received, not consumed yet
    std::size_t m_end = 0;
    std::size_t m_max_buffer = 0;         // m_in never grows beyond this
    std::uint64_t m_discard = 0;          // body bytes of the last request still to skip
    bool m_in_request = true;             // a request is due (from the accept) or partly buffered
    steady::time_point m_header_deadline; // when that request's head must be complete
    std::string m_out;                    // queued heads and small bodies
    std::vector<segment> m_segments;      // the batch, in order
    std::vector<iovec> m_iov;             // the batch as iovecs while it is being sent
};

void connection::note_appended(std::size_t before) {
    std::size_t length = m_out.size() - before;
    if (!m_segments.empty() && !m_segments.back().body)
        m_segments.back().length += length;
    else
        m_segments.push_back({before, length, nullptr});
}

void connection::queue_text(std::string_view text) {
    std::size_t before = m_out.size();
    m_out += text;
    note_appended(before);
}

void connection::queue_body(std::shared_ptr<const std::string> body, std::size_t offset,
                            std::size_t length) {
    if (length == 0)
        return;
    if (length <= k_copy_body_max) {
        queue_text(std::string_view(*body).substr(offset, length));
        return;
    }
    m_segments.push_back({offset, length, std::move(body)});
}

/// An error response: a small HTML body (none for a HEAD request, whose head is all it gets).
void connection::queue_error(int status, bool keep_alive, bool head_only) {
    count(status);
    std::string body = error_body(status);
    response_head h;
    h.status = status;
    h.content_type = "text/html; charset=utf-8";
    h.content_length = body.size();
    h.keep_alive = keep_alive;
    h.allow_get_head = status == 405;
    std::size_t before = m_out.size();
    append_head(m_out, h, m_srv->dates.now());
    note_appended(before);
    if (!head_only)
        queue_text(body);
}

/// 301 to the same target with a slash after the path (the query kept).
void connection::queue_redirect(const request& r, bool keep_alive, bool head_only) {
    count(301);
    std::size_t query = r.target.find('?');
    std::string location(r.target.substr(0, query));
    location += '/';
    if (query != std::string_view::npos)
        location += r.target.substr(query);
    std::string body = error_body(301);
    response_head h;
    h.status = 301;
    h.content_type = "text/html; charset=utf-8";
    h.content_length = body.size();
    h.keep_alive = keep_alive;
    h.location = location;
    std::size_t before = m_out.size();
    append_head(m_out, h, m_srv->dates.now());
    note_appended(before);
    if (!head_only)
        queue_text(body);
}

void connection::queue_cached(const request& r, const cached_file& c) {
    plan p = plan_response(r, c.body->size(), c.identity.mtime_sec, c.last_modified, c.content_type,
                           keep_alive(r));
    count(p.head.status);
    std::size_t before = m_out.size();
    append_head(m_out, p.head, m_srv->dates.now());
    note_appended(before);
    queue_body(c.body, static_cast<std::size_t>(p.body_offset),
               static_cast<std::size_t>(p.body_length));
}

/// The fast path: a fresh cached file, answered without any file operation.
bool connection::serve_cached(const request& r, const std::string& key) {
    cached_file* c = m_srv->cache.find(key);
    if (c == nullptr || !m_srv->cache.is_fresh(*c, steady::now()))
        return false;
    ++m_srv->cache_hits;
    queue_cached(r, *c);
    return true;
}

/// Sends the batch's iovecs with the library's gathering send_all: partial sends, also those that
/// end inside an iovec, are resubmitted inside the op. One send_all per k_stream_chunk bytes or
/// so, each with its own deadline (as stream_file): a slow reader that keeps reading stays.
corio::task<bool> connection::send_fully() {
    std::span<const iovec> rest(m_iov);
    while (!rest.empty()) {
        std::size_t count = 1;
        std::size_t bytes = rest[0].iov_len;
        while (count < rest.size() && bytes + rest[count].iov_len <= k_stream_chunk)
            bytes += rest[count++].iov_len;
        set_send_deadline();
        auto send = m_conn.send_all(rest.first(count));
        corio::result<std::size_t> sent = co_await send;
        if (!sent)
            co_return false;
        rest = rest.subspan(count);
    }
    co_return true;
}

corio::task<bool> connection::flush() {
    if (m_segments.empty())
        co_return true;
    m_iov.clear();
    for (const segment& s : m_segments) {
        const char* base = s.body ? s.body->data() : m_out.data();
        m_iov.push_back({const_cast<char*>(base + s.offset), s.length});
    }
    auto send = send_fully();
    bool ok = co_await std::move(send);
    m_segments.clear(); // releases the cached bodies it held
    m_out.clear();
    m_iov.clear();
    co_return ok;
}

corio::task<bool> connection::stream_file(const corio::file* f, std::uint64_t offset,
                                          std::uint64_t length) {
    while (length > 0) {
        std::uint64_t chunk = std::min(length, k_stream_chunk);
        set_send_deadline();
        auto send = corio::send_file_range(*f, offset, chunk, m_conn.native_handle());
        corio::result<std::uint64_t> sent = co_await std::move(send);
        if (!sent || *sent != chunk)
            co_return false; // an error, or the file shrank: the promised length cannot be kept
        offset += chunk;
        length -= chunk;
    }
    co_return true;
}

/// One complete request: from the cache, or opened, planned and queued (or streamed). False
/// when the connection must close.
corio::task<bool> connection::serve_request(const request* r) {
    bool keep = keep_alive(*r);
    bool head_only = r->method == method::head;
    decoded_target target = decode_target(r->target);
    if (target.status != 0) {
        queue_error(target.status, keep, head_only);
        co_return keep;
    }
    // "dir/" and "dir" are different resources (an index, a redirect): the key keeps the slash.
    std::string key = target.path;
    if (target.trailing_slash && !key.empty())
        key += '/';
    if (serve_cached(*r, key))
        co_return keep;

    auto opening = open_target(m_srv, target.path, target.trailing_slash);
    opened_file o = co_await std::move(opening);
    if (o.status == 301) {
        queue_redirect(*r, keep, head_only);
        co_return keep;
    }
    if (o.status != 0) {
        if (o.status == 503)
            m_srv->front->count_out_of_fds(); // EMFILE/ENFILE: net::server reports them
        queue_error(o.status, keep, head_only);
        co_return keep;
    }
    file_identity id = identity_of(o.st);
    file_cache& cache = m_srv->cache;
    if (cache.admits(id.size)) {
        cached_file* old = cache.find(key);
        if (old != nullptr && old->identity == id) {
            old->validated = steady::now();
            ++m_srv->cache_revalidated;
            // TRICKY: queued before the close is awaited: meanwhile another connection may
            // replace this entry (the response holds the body by shared_ptr, not the entry).
            queue_cached(*r, *old);
            co_await close_file(&o.f);
            co_return keep;
        }
        auto body = std::make_shared<std::string>(static_cast<std::size_t>(id.size), '\0');
        auto read = o.f.read_at(std::as_writable_bytes(std::span(*body)), 0);
        corio::result<std::size_t> got = co_await read;
        co_await close_file(&o.f);
        if (!got) {
            queue_error(500, keep, head_only);
            co_return keep;
        }
        body->resize(*got); // the file shrank meanwhile: serve what was read, recheck next time
        ++m_srv->cache_misses;
        cached_file entry;
        entry.body = std::move(body);
        entry.identity = id;
        entry.identity.size = *got;
        entry.last_modified = format_http_date(id.mtime_sec);
        entry.content_type = mime_type(o.served_path);
        entry.validated = *got == id.size ? steady::now() : steady::time_point{};
        cache.put(key, entry);
        queue_cached(*r, entry);
        co_return keep;
    }

    // Too large for the cache: head now, body streamed from the file.
    ++m_srv->cache_misses;
    std::string last_modified = format_http_date(id.mtime_sec);
    plan p =
        plan_response(*r, id.size, id.mtime_sec, last_modified, mime_type(o.served_path), keep);
    count(p.head.status);
    std::size_t before = m_out.size();
    append_head(m_out, p.head, m_srv->dates.now());
    note_appended(before);
    bool ok = true;
    if (p.body_length > 0) {
        auto flushing = flush();
        ok = co_await std::move(flushing);
        if (ok) {
            auto streaming = stream_file(&o.f, p.body_offset, p.body_length);
            ok = co_await std::move(streaming);
        }
    }
    co_await close_file(&o.f);
    co_return ok&& keep;
}

/// Answers every complete request in [m_begin, m_end) of m_data, in order, and skips the bodies
/// to discard. The parsed request's views point into m_data: its bytes (m_in or the lease) stay
/// put until this returns. False when the connection must close (after flushing what was queued).
corio::task<bool> connection::process_buffer() {
    for (;;) {
        if (m_discard > 0) {
            std::uint64_t skip = std::min<std::uint64_t>(m_discard, m_end - m_begin);
            m_begin += static_cast<std::size_t>(skip);
            m_discard -= skip;
            if (m_discard > 0)
                break;
        }
        if (m_begin == m_end)
            break;
        parse_status s = m_parser.feed(std::string_view(m_data + m_begin, m_end - m_begin));
        if (s == parse_status::need_more)
            break;
        if (s == parse_status::error) {
            queue_error(m_parser.error_status(), false); // the stream cannot be trusted any more
            auto flushing = flush();
            bool flushed = co_await std::move(flushing);
            (void)flushed;
            co_return false;
        }
        ++m_srv->requests;
        const request& r = m_parser.parsed();
        auto serving = serve_request(&r);
        bool keep = co_await std::move(serving);
        m_begin += r.head_size;
        m_discard = r.content_length;
        m_parser.reset();
        m_in_request = false;
        if (!keep) {
            auto flushing = flush();
            bool flushed = co_await std::move(flushing);
            (void)flushed;
            co_return false;
        }
        if (m_out.size() >= k_batch_max || m_segments.size() >= 64) {
            auto flushing = flush();
            bool flushed = co_await std::move(flushing);
            if (!flushed)
                co_return false;
        }
    }
    auto flushing = flush();
    bool flushed = co_await std::move(flushing);
    co_return flushed;
}

/// After a response that ends the connection: FIN first, then read (and drop) what the client
/// still sends for a moment, so that closing with unread bytes does not reset the connection
/// before the client has read the response. A client that neither closes nor sends for
/// --linger-timeout-ms is closed anyway (counted: linger_timeouts); so is one whose connection
/// deadline passes meanwhile (the sweep; counted: timed_out). In ring mode the bytes are read
/// through the connection's stream (its multishot recv is still armed on the socket).
corio::task<void> connection::linger_close(net::recv_stream* chunks) {
    auto shut = m_conn.shutdown(SHUT_WR);
    corio::result<void> down = co_await shut;
    if (down && m_srv->opt.linger_timeout.count() > 0) {
        char sink[4096];
        for (int i = 0; i < 64; ++i) {
            bool timed_out = false;
            bool ended = false;
            if (chunks != nullptr) {
                corio::result<net::buffer_lease> got =
                    co_await chunks->next(m_srv->opt.linger_timeout);
                timed_out = got == std::errc::timed_out;
                ended = !got || got->empty(); // the lease goes back to the ring at once
            } else {
                auto recv = corio::with_timeout(m_conn.recv_some(std::span<char>(sink)),
                                                m_srv->opt.linger_timeout);
                corio::result<std::size_t> n = co_await recv;
                timed_out = n == std::errc::timed_out;
                ended = !n || *n == 0;
            }
            if (ended) {
                m_srv->linger_timeouts += timed_out;
                break;
            }
        }
    }
    if (m_entry.timed_out)
        m_ctx->count_timeout(); // run() counted only what timed out before the linger
    forget_fd();
    corio::result<void> closed = co_await m_conn.close();
    (void)closed;
}

/// Ends the connection: after a response that ends it (`orderly`) with a linger, else at once.
corio::task<void> connection::close(net::recv_stream* chunks, bool orderly) {
    if (m_entry.timed_out)
        m_ctx->count_timeout();
    if (orderly && !m_entry.timed_out) {
        auto lingering = linger_close(chunks);
        co_await std::move(lingering);
        co_return;
    }
    forget_fd();
    corio::result<void> closed = co_await m_conn.close(); // ends the stream's armed recv too
    (void)closed;
}

/// Before waiting for bytes: the deadline the sweep enforces (keep-alive when idle between
/// requests, else the current request head's), and idleness for the drain.
void connection::before_wait(bool idle) {
    if (idle && m_out.capacity() > k_batch_max / 4)
        std::string().swap(m_out); // an idle connection holds no large output buffer
    steady::time_point now = steady::now();
    if (idle && !m_in_request) {
        m_entry.deadline = now + m_srv->opt.keepalive_timeout;
    } else {
        if (!m_in_request) {
            m_in_request = true;
            m_header_deadline = now + m_srv->opt.header_timeout;
        }
        m_entry.deadline = m_header_deadline;
    }
    m_ctx->set_idle(idle);
}

/// After bytes arrived (before they are counted in m_end): the first byte of a new request
/// starts its header deadline.
void connection::after_arrival() noexcept {
    m_ctx->set_idle(false);
    if (m_begin == m_end && m_parser.is_fresh() && !m_in_request && m_discard == 0) {
        m_in_request = true;
        m_header_deadline = steady::now() + m_srv->opt.header_timeout;
    }
}

/// The read loop with a buffer of its own: recv into m_in, answer what is complete, compact,
/// grow only for a head that needs it. True when the server ends the connection after a
/// response (linger), false when the peer or a timeout ended it.
corio::task<bool> connection::read_into_buffer() {
    for (;;) {
        m_data = m_in.data();
        bool more = false;
        {
            // Scoped: the finished frame goes before the wait instead of staying with it.
            auto processing = process_buffer();
            more = co_await std::move(processing);
        }
        if (!more)
            co_return true;
        bool idle = m_begin == m_end && m_parser.is_fresh() && m_discard == 0;
        if (m_ctx->is_draining() && idle)
            co_return false;
        // Compact: the unconsumed bytes move to the front; grow only for a head that needs it.
        if (m_begin > 0) {
            std::memmove(m_in.data(), m_in.data() + m_begin, m_end - m_begin);
            m_end -= m_begin;
            m_begin = 0;
        }
        if (m_end == m_in.size()) {
            if (m_in.size() >= m_max_buffer) {
                queue_error(431, false); // defensive: the parser refuses such heads first
                auto flushing = flush();
                bool flushed = co_await std::move(flushing);
                (void)flushed;
                co_return true;
            }
            m_in.resize(std::min(m_in.size() * 2, m_max_buffer));
        } else if (idle && m_in.size() > 4 * k_initial_buffer) {
            m_in.resize(k_initial_buffer);
            m_in.shrink_to_fit(); // an idle connection holds a small buffer again
        }
        m_entry.buffered = m_in.capacity();
        before_wait(idle);
        auto recv = m_conn.recv_some(std::span<char>(m_in.data() + m_end, m_in.size() - m_end));
        corio::result<std::size_t> n = co_await recv;
        m_ctx->set_idle(false);
        if (!n || *n == 0)
            co_return false;
        after_arrival();
        m_end += *n;
    }
}

/// After process_buffer() in ring mode: what is left unconsumed is a partial request head (the
/// complete ones were answered, bodies skipped). It moves to the front of m_in (copied out of
/// the lease when `from_lease`); nothing left releases m_in. False (after queuing a 431) when
/// the head outgrew what the parser can ever accept (defensive: it refuses such heads first).
bool connection::keep_partial_head(bool from_lease) {
    std::size_t left = m_end - m_begin;
    if (left == 0) {
        std::vector<char>().swap(m_in); // an idle connection holds no input buffer
    } else if (from_lease) {
        m_in.assign(m_data + m_begin, m_data + m_end);
    } else if (m_begin > 0) {
        std::memmove(m_in.data(), m_in.data() + m_begin, left);
        m_in.resize(left);
    }
    m_begin = 0;
    m_end = left;
    m_data = m_in.data();
    m_entry.buffered = m_in.capacity();
    if (left <= m_max_buffer)
        return true;
    queue_error(431, false);
    return false;
}

/// The read loop in ring mode: each chunk of the multishot recv is parsed where the kernel put
/// it while no partial head is pending; a chunk continuing a partial head is appended to m_in
/// (at most one ring buffer beyond the head) and its lease dropped at once. The lease being
/// parsed lives until process_buffer() returns: every request in it has been served by then.
/// The sweep's and the drain's shutdown(2) end the wait in next() with EOF. Returns as
/// read_into_buffer().
corio::task<bool> connection::read_from_ring(net::recv_stream* chunks) {
    net::buffer_lease lease;
    for (;;) {
        bool more = false;
        {
            auto processing = process_buffer(); // scoped as in read_into_buffer()
            more = co_await std::move(processing);
        }
        if (!more)
            co_return true;
        bool kept = keep_partial_head(!lease.empty());
        lease.reset(); // back to the ring before waiting
        if (!kept) {
            auto flushing = flush();
            bool flushed = co_await std::move(flushing);
            (void)flushed;
            co_return true;
        }
        bool idle = m_end == 0 && m_parser.is_fresh() && m_discard == 0;
        if (m_ctx->is_draining() && idle)
            co_return false;
        before_wait(idle);
        corio::result<net::buffer_lease> got = co_await chunks->next();
        m_ctx->set_idle(false);
        if (!got || got->empty())
            co_return false; // EOF (also after the sweep's or the drain's shutdown) or an error
        after_arrival();
        std::span<const std::byte> bytes = got->data();
        const char* first = reinterpret_cast<const char*>(bytes.data());
        if (m_end > 0) {
            m_in.reserve(m_end + bytes.size());
            m_in.insert(m_in.end(), first, first + bytes.size());
            m_data = m_in.data();
            m_end = m_in.size();
            m_entry.buffered = m_in.capacity();
        } else {
            lease = std::move(*got);
            m_data = first;
            m_end = bytes.size();
        }
    }
}

corio::task<void> connection::run() {
    if (m_srv->ring == nullptr) {
        auto reading = read_into_buffer();
        bool orderly = co_await std::move(reading);
        auto closing = close(nullptr, orderly);
        co_await std::move(closing);
        co_return;
    }
    // Declared after m_conn's first use and destroyed before the connection: the stream is
    // done with the socket (closed by then) when it goes.
    net::recv_stream chunks = m_conn.recv_multishot(*m_srv->ring);
    auto reading = read_from_ring(&chunks);
    bool orderly = co_await std::move(reading);
    auto closing = close(&chunks, orderly);
    co_await std::move(closing);
}

corio::task<void> serve(net::tcp_stream conn, net::server::connection* ctx, server_state* srv) {
    auto c = std::make_unique<connection>(std::move(conn), ctx, srv);
    auto running = c->run();
    co_await std::move(running);
}

// ----- timeouts, signals, statistics -----

/// Shuts down every connection past its deadline (header, keep-alive or send timeout). One sweep
/// per tick instead of a linked timeout per recv: a tick is a fraction of the shortest timeout,
/// so a timeout fires at most that fraction late.
corio::task<void> sweep_timeouts(server_state* srv) {
    const options& o = srv->opt;
    auto shortest = std::min({o.header_timeout, o.keepalive_timeout, o.send_timeout});
    auto tick =
        std::clamp(shortest / 8, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
    for (;;) {
        corio::result<void> slept = co_await corio::sleep_for(tick);
        if (!slept)
            co_return;
        steady::time_point now = steady::now();
        for (connection_entry* c = srv->head; c != nullptr; c = c->next) {
            if (c->deadline <= now && !c->timed_out) {
                c->timed_out = true;
                server_state::kick(c);
            }
        }
    }
}

/// One shard's counters at one moment, taken on that shard; a stats line sums them over the
/// shards (open_fds is the process's; longest_stall_ms the maximum).
struct snapshot {
    net::server_stats front;                 // connections, accepted, ... (summed)
    std::uint64_t linger_timeouts = 0;
    std::uint64_t requests = 0;
    std::uint64_t by_class[6] = {};
    std::size_t cache_entries = 0;
    std::size_t cache_bytes = 0;
    std::uint64_t cache_hits = 0;
    std::uint64_t cache_revalidated = 0;
    std::uint64_t cache_misses = 0;
    std::size_t buffered = 0;                // bytes of the connections' own input buffers
    std::size_t ring_bytes = 0;              // bytes of the shards' provided-buffer rings
    corio::io_context_stats ctx;             // the fields the line shows (summed)
    long long longest_stall_ms = 0;

    snapshot& operator+=(const snapshot& o) noexcept {
        front.connections += o.front.connections;
        front.accepted += o.front.accepted;
        front.refused += o.front.refused;
        front.timed_out += o.front.timed_out;
        front.out_of_fds += o.front.out_of_fds;
        front.accept_backoffs += o.front.accept_backoffs;
        linger_timeouts += o.linger_timeouts;
        requests += o.requests;
        for (int i = 0; i < 6; ++i)
            by_class[i] += o.by_class[i];
        cache_entries += o.cache_entries;
        cache_bytes += o.cache_bytes;
        cache_hits += o.cache_hits;
        cache_revalidated += o.cache_revalidated;
        cache_misses += o.cache_misses;
        buffered += o.buffered;
        ring_bytes += o.ring_bytes;
        ctx.live_tasks += o.ctx.live_tasks;
        ctx.frame_bytes += o.ctx.frame_bytes;
        ctx.peak_frame_bytes += o.ctx.peak_frame_bytes;
        ctx.ops_in_flight += o.ctx.ops_in_flight;
        ctx.kernel_enters += o.ctx.kernel_enters;
        ctx.cq_overflows += o.ctx.cq_overflows;
        ctx.stalls += o.ctx.stalls;
        longest_stall_ms = std::max(longest_stall_ms, o.longest_stall_ms);
        return *this;
    }
};

/// One shard's part of the server: touched only on that shard's thread.
struct shard_state {
    explicit shard_state(const options& o) : srv(o) {}
    server_state srv;  // its connections, cache and counters
    snapshot last;     // taken when its server's run() returned (the final stats line)
    bool done = false; // `last` is final: the server is gone
};

/// What every shard reads (each its own entries of `shards`, `listeners` and the link).
struct shared {
    const options* opt = nullptr;
    int root_fd = -1;                     // the document root, O_PATH|O_DIRECTORY
    corio::signal_set* signals = nullptr; // read on shard 0 only
    example::shard_link* link = nullptr;  // drains, the final stats line
    std::vector<net::tcp_listener>* listeners = nullptr;
    std::vector<std::unique_ptr<shard_state>>* shards = nullptr;
};

/// A shard's counters now, on its own thread (its io_context is current).
snapshot take(const shard_state* sh) {
    if (sh->done)
        return sh->last;
    const server_state* srv = &sh->srv;
    snapshot snap;
    snap.front = srv->front->stats();
    snap.linger_timeouts = srv->linger_timeouts;
    snap.requests = srv->requests;
    for (int i = 0; i < 6; ++i)
        snap.by_class[i] = srv->by_class[i];
    snap.cache_entries = srv->cache.entries();
    snap.cache_bytes = srv->cache.bytes();
    snap.cache_hits = srv->cache_hits;
    snap.cache_revalidated = srv->cache_revalidated;
    snap.cache_misses = srv->cache_misses;
    for (const connection_entry* c = srv->head; c != nullptr; c = c->next)
        snap.buffered += c->buffered;
    if (srv->ring != nullptr)
        snap.ring_bytes = std::size_t{srv->ring->count()} * srv->ring->buffer_size();
    snap.ctx = corio::io_context::current().stats();
    snap.longest_stall_ms = static_cast<long long>(snap.ctx.longest_stall.count() / 1000);
    return snap;
}

/// On shard k: its counters, once its server has drained when `after_drain`.
corio::task<snapshot> snapshot_of(const shared* sh, unsigned k, bool after_drain) {
    if (after_drain)
        co_await example::wait_drained(&sh->link->at(k));
    co_return take((*sh->shards)[k].get());
}

/// On shard 0: the stats line, summed over the shards (after every shard drained when `final`).
corio::task<void> print_stats(const shared* sh, bool final) {
    auto counting = corio::offload(example::count_open_fds{});
    long fds = co_await counting;
    snapshot t;
    for (unsigned k = 0; k < sh->link->size(); ++k) {
        bool after_drain = final && k != 0; // shard 0 is the caller: its drain is done
        auto call =
            corio::on_shard(k, [sh, k, after_drain] { return snapshot_of(sh, k, after_drain); });
        snapshot one = co_await call;
        t += one;
    }
    const net::server_stats& front = t.front;
    const corio::io_context_stats& s = t.ctx;
    std::printf(
        "stats: connections=%zu accepted=%llu rejected=%llu timed_out=%llu linger_timeouts=%llu "
        "requests=%llu "
        "2xx=%llu 3xx=%llu 4xx=%llu 5xx=%llu cache_entries=%zu cache_bytes=%zu "
        "cache_hits=%llu cache_revalidated=%llu cache_misses=%llu out_of_fds_503=%llu "
        "accept_backoffs=%llu bytes_buffered=%zu ring_bytes=%zu open_fds=%ld live_tasks=%zu "
        "frame_bytes=%zu frame_bytes_peak=%zu ops_in_flight=%zu "
        "kernel_enters=%llu "
        "cq_overflows=%llu stalls=%llu longest_stall_ms=%lld\n",
        front.connections, static_cast<unsigned long long>(front.accepted),
        static_cast<unsigned long long>(front.refused),
        static_cast<unsigned long long>(front.timed_out),
        static_cast<unsigned long long>(t.linger_timeouts),
        static_cast<unsigned long long>(t.requests),
        static_cast<unsigned long long>(t.by_class[2]),
        static_cast<unsigned long long>(t.by_class[3]),
        static_cast<unsigned long long>(t.by_class[4]),
        static_cast<unsigned long long>(t.by_class[5]), t.cache_entries, t.cache_bytes,
        static_cast<unsigned long long>(t.cache_hits),
        static_cast<unsigned long long>(t.cache_revalidated),
        static_cast<unsigned long long>(t.cache_misses),
        static_cast<unsigned long long>(front.out_of_fds),
        static_cast<unsigned long long>(front.accept_backoffs), t.buffered, t.ring_bytes, fds, s.live_tasks,
        s.frame_bytes, s.peak_frame_bytes, s.ops_in_flight,
        static_cast<unsigned long long>(s.kernel_enters),
        static_cast<unsigned long long>(s.cq_overflows),
        static_cast<unsigned long long>(s.stalls), t.longest_stall_ms);
    std::fflush(stdout);
}

/// After shard k's drain (on shard 0 the signals are still watched): the drain's outcome, and on
/// shard 0 the last stats line, once every shard drained.
corio::task<void> finish(const shared* sh, unsigned k) {
    const server_state& srv = (*sh->shards)[k]->srv;
    if (srv.front->stats().drain_timed_out)
        std::printf("drain: cancelled the connections still open after %lld ms\n",
                    static_cast<long long>(sh->opt->drain.count()));
    if (k == 0)
        co_await print_stats(sh, true);
    else
        std::fflush(stdout);
}

// ----- the server -----

/// Shard k's server: its own listener, connections, cache and counters; shard 0 also owns the
/// signals.
corio::task<void> run_shard(const shared* sh, unsigned k) {
    const options& opt = *sh->opt;
    shard_state& mine = *(*sh->shards)[k];
    server_state& srv = mine.srv;
    srv.root_fd = sh->root_fd;
    // One ring per shard (a ring belongs to one loop), destroyed after the server (and so after
    // every connection's stream and lease).
    std::unique_ptr<net::buffer_ring> ring;
    if (opt.provided_buffers > 0) {
        try {
            ring = std::make_unique<net::buffer_ring>(corio::io_context::current(),
                                                      opt.provided_buffers,
                                                      opt.provided_buffer_size);
            srv.ring = ring.get();
        } catch (const std::system_error& e) {
            // A kernel before 5.19 has no provided-buffer rings: serve all the same.
            std::fprintf(stderr, "corio-http: %s: a buffer per connection instead\n", e.what());
        }
    }

    // The skeleton (limit, fd back-off report, signals, drain) is net::server's.
    net::server_options so;
    so.name = "corio-http";
    so.max_connections = opt.max_connections; // beyond it: closed at once (bounded memory)
    so.drain_timeout = opt.drain;             // in-flight responses get this, then cancelled
    so.signals = k == 0 ? sh->signals : nullptr;
    so.exit_on_second_signal = true;
    so.out_of_fds_what = "requests answered 503";
    so.on_drain = [sh, k, &srv](int signo) {
        int reported = sh->link->on_drain(k, signo); // the other shards drain too
        if (reported == 0)
            return; // the listener broke (logged): no signal to report
        std::size_t open = srv.front->stats().connections;
        if (sh->link->size() == 1)
            std::printf("signal %d: draining %zu connections\n", reported, open);
        else
            std::printf("signal %d: draining %zu connections on shard %u\n", reported, open, k);
        std::fflush(stdout);
    };
    if (k == 0)
        so.on_stats = [sh] {
            corio::dump_tasks(); // stderr: every live task of shard 0 and what it waits on
            return print_stats(sh, false);
        };
    so.on_drained = [sh, k] { return finish(sh, k); };
    std::unique_ptr<net::server> server = sh->link->make_server(
        k, *sh->listeners,
        [&srv](net::tcp_stream conn, net::server::connection* c) {
            return serve(std::move(conn), c, &srv);
        },
        std::move(so));
    net::server& front = *server;
    srv.front = &front;
    front.spawn(sweep_timeouts(&srv));
    sh->link->attach(k, &front);
    net::server_stats done = co_await front.run();
    (void)done;
    mine.last = take(&mine); // what the final stats line reads once the server is gone
    mine.done = true;
    srv.front = nullptr;
    srv.ring = nullptr;
    sh->link->detach(k);
}

// ----- command line -----

options parse_args(int argc, char** argv) {
    options opt;
    cli::parser p("corio-http",
                  "An HTTP/1.1 static file server (GET, HEAD, keep-alive, ranges) on corio.",
                  stop_signals::k_usage);
    p.text("--root", opt.root, "the document root").type("DIR").required();
    p.port(opt.port);
    p.text("--bind", opt.bind, "address to listen on").type("ADDR");
    p.text("--index", opt.index, "served for a directory; '': every directory is 403").type("NAME");
    p.number("--sq-entries", opt.sq_entries, 0, 32768, "io_uring SQ entries");
    p.number("--cq-entries", opt.cq_entries, 0, 65536,
             "io_uring CQ entries; 0: the kernel's 2 x SQ");
    p.number("--max-connections", opt.max_connections, 0, 1'000'000,
             "beyond this, new connections are closed at once");
    p.duration("--header-timeout-ms", opt.header_timeout, 24h,
               "a request head must arrive within this; 0: no limit");
    p.duration("--keepalive-timeout-ms", opt.keepalive_timeout, 24h,
               "an idle keep-alive connection lasts this; 0: no limit");
    p.duration("--send-timeout-ms", opt.send_timeout, 24h,
               "a peer not reading for this is dropped; 0: no limit");
    p.duration("--linger-timeout-ms", opt.linger_timeout, 24h,
               "closing: wait this long for the client's FIN");
    p.duration("--drain-ms", opt.drain, 24h, "on SIGINT/SIGTERM: time the responses get to finish");
    p.number("--max-request-line", opt.limits.max_request_line, 0, 1 << 20,
             "bytes of the request line; at least 16")
        .type("BYTES");
    p.number("--max-headers", opt.limits.max_headers, 0, 10000, "header fields per request");
    p.number("--max-header-bytes", opt.limits.max_header_bytes, 0, 1 << 20,
             "bytes of the header fields; at least 16")
        .type("BYTES");
    p.number<std::uint64_t>("--max-body", opt.limits.max_body, 0,
                            std::numeric_limits<std::int64_t>::max(),
                            "request body bytes skipped; a larger body is 413")
        .type("BYTES");
    p.number("--cache-bytes", opt.cache_bytes, 0, std::size_t{1} << 40,
             "the small-file cache's bound; 0: no cache (every request opens, stats and reads "
             "the file)")
        .type("BYTES");
    p.number("--cache-max-file", opt.cache_max_file, 0, std::size_t{1} << 30,
             "larger files are always read from disk")
        .type("BYTES");
    p.duration("--cache-validity-ms", opt.cache_validity, 24h,
               "a cached file is checked again after this");
    p.number("--provided-buffers", opt.provided_buffers, 0, 32768,
             "> 0: requests are read through a ring of this many buffers per shard (a power of "
             "2; an idle connection then holds no input buffer); 0: a 4 KiB buffer per "
             "connection");
    p.number("--provided-buffer-size", opt.provided_buffer_size, 64, 1 << 20,
             "bytes of each ring buffer (the most one read delivers)")
        .type("BYTES");
    example::add_shard_flags(p, opt.shards);
    p.parse(argc, argv);
    if (std::string bad = example::check_cpus(opt.shards.cpus); !bad.empty())
        p.fail(bad);
    if (opt.root.empty())
        p.fail("--root is required");
    if (opt.limits.max_request_line < 16 || opt.limits.max_header_bytes < 16)
        p.fail("the request line and header limits must be >= 16");
    for (auto* t : {&opt.header_timeout, &opt.keepalive_timeout, &opt.send_timeout})
        if (t->count() == 0)
            *t = std::chrono::hours(24 * 365); // "no timeout"
    if ((opt.provided_buffers & (opt.provided_buffers - 1)) != 0)
        p.fail("--provided-buffers wants 0 or a power of 2, got " +
               std::to_string(opt.provided_buffers));
    if (opt.index.find('/') != std::string::npos)
        p.fail("--index is a file name, not a path");
    return opt;
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse_args(argc, argv);
    try {
        // Before any thread (the shards, the offload pool): the signals are blocked in all of
        // them and read from shard 0's ring.
        corio::signal_set signals{SIGINT, SIGTERM, SIGUSR1};
        // Opened once, before the loops: every shard resolves paths beneath the same fd.
        int root_fd = ::open(opt.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
            std::fprintf(stderr, "corio-http: --root %s: %s\n", opt.root.c_str(),
                         std::system_category().message(errno).c_str());
            return 2;
        }
        corio::shard_options group_options;
        group_options.count = opt.shards.count;
        group_options.cpus = opt.shards.cpus;
        group_options.context = {.sq_entries = opt.sq_entries, .cq_entries = opt.cq_entries};
        corio::shard_group group(std::move(group_options));
        example::shard_link link(group, opt.shards.accept);
        int status = 0;
        std::vector<net::tcp_listener> listeners =
            example::bind_listeners("corio-http", opt.bind, opt.port,
                                    link.listener_count(), &status);
        if (listeners.empty()) {
            ::close(root_fd);
            return status;
        }
        example::announce(listeners[0]);
        std::vector<std::unique_ptr<shard_state>> shards;
        for (unsigned k = 0; k < group.size(); ++k)
            shards.push_back(std::make_unique<shard_state>(opt)); // each its own cache
        shared sh{&opt, root_fd, &signals, &link, &listeners, &shards};
        group.run([&sh](corio::shard& s) { return run_shard(&sh, s.id()); });
        ::close(root_fd);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "corio-http: %s\n", e.what());
        return 1;
    }
}
