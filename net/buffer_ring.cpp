// SPDX-License-Identifier: MIT
// The provided-buffer ring set up by hand (liburing 2.3 has no io_uring_setup_buf_ring) and the
// multishot recv stream that fills it.
#include <corio/net/buffer_ring.hpp>

#include <corio/net/socket.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <limits>
#include <system_error>

namespace corio::net {

namespace detail {

namespace {

/// Next group id tried when the caller lets corio pick one (ids are per ring; one counter per
/// thread keeps two rings of one loop apart, EEXIST moves past ids taken by someone else).
thread_local std::uint16_t t_next_group_id = 0x100;

std::size_t round_to_pages(std::size_t bytes) {
    auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return (bytes + page - 1) / page * page;
}

void* map_anonymous(std::size_t bytes, const char* what) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        throw std::system_error(errno, std::system_category(), what);
    return p;
}

/// A stream's share of the ring: 1/64 of it, at most 64 KiB (enough to keep one connection's
/// bulk transfer streaming; the rest waits in its socket), at least one buffer. With 512 buffers
/// of 4 KiB that is 32 KiB: 64 connections that never drain their streams cannot empty it.
std::uint32_t default_stream_limit(unsigned count, std::uint32_t size) noexcept {
    constexpr std::uint64_t k_most = 64 * 1024;
    std::uint64_t share = std::min<std::uint64_t>(std::uint64_t{count} * size / 64, k_most);
    return static_cast<std::uint32_t>(std::max<std::uint64_t>(share, size));
}

} // namespace

buffer_group::buffer_group(io_context& ctx, unsigned count, std::uint32_t size, int group_id,
                           bool incremental)
    : m_ctx(&ctx), m_count(count), m_size(size), m_mask(io_uring_buf_ring_mask(count)),
      m_available(count) {
    if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0 ||
        group_id > 0xffff)
        throw std::system_error(EINVAL, std::system_category(),
                                "corio: buffer_ring needs a power-of-two count up to 32768, a "
                                "non-zero buffer size and a group id below 65536");
    m_stream_limit = default_stream_limit(count, size);
    m_offsets = std::make_unique<std::uint32_t[]>(count);
    m_ring_bids = std::make_unique<std::uint16_t[]>(count);
    m_position = std::make_unique<std::uint32_t[]>(count);
    m_pieces = std::make_unique<std::uint32_t[]>(count);
    m_out = std::make_unique<bool[]>(count);
    m_br_bytes = round_to_pages(count * sizeof(io_uring_buf));
    m_buffers_bytes = round_to_pages(std::size_t{count} * size);
    // The kernel wants the descriptor ring page aligned: mmap gives exactly that.
    m_br = static_cast<io_uring_buf_ring*>(map_anonymous(m_br_bytes, "corio: buffer_ring mmap"));
    try {
        m_buffers = static_cast<std::byte*>(map_anonymous(m_buffers_bytes,
                                                          "corio: buffer_ring buffers mmap"));
    } catch (...) {
        ::munmap(m_br, m_br_bytes);
        throw;
    }
    io_uring_buf_ring_init(m_br);

    int rc = -EEXIST;
    for (int attempt = 0; attempt < 64 && rc == -EEXIST; ++attempt) {
        m_id = group_id >= 0 ? static_cast<std::uint16_t>(group_id) : t_next_group_id++;
        // Incremental consumption where the kernel has it (6.12+); EINVAL before (and on the
        // epoll backend): whole buffers per completion, as before.
        rc = incremental ? register_ring(k_pbuf_ring_inc) : -EINVAL;
        m_incremental = rc == 0;
        if (rc == -EINVAL)
            rc = register_ring(0);
        if (group_id >= 0)
            break;
    }
    if (rc < 0) {
        ::munmap(m_buffers, m_buffers_bytes);
        ::munmap(m_br, m_br_bytes);
        throw std::system_error(-rc, std::system_category(),
                                "corio: io_uring_register_buf_ring (kernel 5.19+)");
    }
    for (unsigned bid = 0; bid < count; ++bid) {
        io_uring_buf_ring_add(m_br, buffer(static_cast<std::uint16_t>(bid)), size,
                              static_cast<unsigned short>(bid), m_mask, static_cast<int>(bid));
        m_ring_bids[bid] = static_cast<std::uint16_t>(bid);
        m_position[bid] = bid;
    }
    io_uring_buf_ring_advance(m_br, static_cast<int>(count));
    m_tail = count;
}

int buffer_group::register_ring(std::uint16_t flags) noexcept {
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(m_br);
    reg.ring_entries = m_count;
    reg.bgid = m_id;
    reg.pad = flags; // the kernel's io_uring_buf_reg::flags
    return m_ctx->register_buffer_ring(reg);
}

buffer_group::~buffer_group() {
    (void)m_ctx->unregister_buffer_ring(m_id);
    ::munmap(m_buffers, m_buffers_bytes);
    ::munmap(m_br, m_br_bytes);
}

std::uint32_t buffer_group::received(std::uint16_t bid, std::uint32_t bytes, bool more,
                                     bool keep) noexcept {
    std::uint32_t at = m_offsets[bid];
    m_offsets[bid] = at + bytes; // an incremental ring's next completion continues there
    if (keep)
        ++m_pieces[bid];
    if (!more) {
        // The kernel is done with the buffer (always so without incremental consumption).
        m_out[bid] = true;
        --m_available;
        if (m_pieces[bid] == 0)
            recycle(bid);
    }
    return at;
}

void buffer_group::release(std::uint16_t bid) noexcept {
    if (--m_pieces[bid] == 0 && m_out[bid])
        recycle(bid);
}

void buffer_group::recycle(std::uint16_t bid) noexcept {
    m_offsets[bid] = 0;
    m_out[bid] = false;
    io_uring_buf_ring_add(m_br, buffer(bid), m_size, bid, m_mask, 0);
    io_uring_buf_ring_advance(m_br, 1);
    m_position[bid] = m_tail;
    m_ring_bids[m_tail++ & static_cast<unsigned>(m_mask)] = bid;
    ++m_available;
    wake_one();
}

void buffer_group::wake_one() noexcept {
    starved_node* node = m_starved_head;
    if (!node || !has_unpromised())
        return;
    remove_starved(node);
    node->m_woken = true;
    ++m_waking;
    node->m_wake(node);
}

void buffer_group::woken_done(starved_node* node) noexcept {
    if (!node->m_woken)
        return;
    node->m_woken = false;
    --m_waking;
    wake_one();
}

void buffer_group::add_starved(starved_node* node) noexcept {
    if (node->m_linked)
        return;
    node->m_linked = true;
    node->m_next = nullptr;
    node->m_prev = m_starved_tail;
    (m_starved_tail ? m_starved_tail->m_next : m_starved_head) = node;
    m_starved_tail = node;
}

void buffer_group::remove_starved(starved_node* node) noexcept {
    if (!node->m_linked)
        return;
    (node->m_prev ? node->m_prev->m_next : m_starved_head) = node->m_next;
    (node->m_next ? node->m_next->m_prev : m_starved_tail) = node->m_prev;
    node->m_prev = node->m_next = nullptr;
    node->m_linked = false;
}

// ----- recv_state -----

recv_state::recv_state(io_context& ctx, const basic_socket& socket, buffer_group& group)
    : multishot_state(ctx), m_socket(&socket), m_group(&group) {
    group.ref();
    m_wake = [](starved_node* node) noexcept {
        static_cast<recv_state*>(node)->request_service();
    };
    m_idle.m_owner = this;
    m_idle.m_fire = &on_idle_timer;
    m_wait_deadline_ns = std::numeric_limits<std::int64_t>::max();
}

recv_state::~recv_state() {
    if (m_idle.queued())
        m_loop->remove_timer(&m_idle);
    m_group->remove_starved(this);
    m_group->woken_done(this);
    while (!m_queue.empty())
        m_group->release(m_queue.pop().bid);
    m_group->unref();
}

void recv_state::prepare(io_uring_sqe* sqe) noexcept {
    const int fd = m_socket->native_handle();
    // The kernel's cap counts bytes, and so does the limit only when consumption is
    // incremental (whole buffers: a 64-byte chunk costs 4 KiB of ring, 512 of them the ring).
    m_capped = m_group->is_incremental() && m_group->takes_recv_cap();
    if (m_capped) {
        // Multishot, and the kernel ends it after stream_limit() bytes (Linux 6.17): the stream
        // never holds more than that however fast the peer sends. NOTE: liburing 2.3 names the
        // field file_index; the kernel reads `optlen` there.
        io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        sqe->file_index = m_group->stream_limit();
    } else {
        // Without the cap a multishot recv cannot be bounded: with bytes waiting in the socket
        // the kernel fills buffer after buffer in one go (a cancel arrives after it emptied the
        // ring). One buffer per recv instead, re-armed while the stream is under its limit.
        io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = m_group->id();
    // With no buffer free the kernel would answer ENOBUFS at once, whether or not the peer has
    // sent: wait for bytes first, so that only a stream with bytes waiting queues for a buffer
    // (a silent stream queued before was promised the next returned buffer and kept it from
    // the others until its peer spoke).
    if (!m_group->has_unpromised())
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    // A bundle fills as many buffers as the bytes waiting need in one completion (Linux 6.10):
    // 2.5x less CPU per byte on a bulk stream (bench_ring_ops), but 1-3 % more per small read
    // (paired echo runs), so only for a stream whose last completion filled its buffer. Only
    // under the cap, which bounds it: a single recv's bundle is not bounded by its length (the
    // kernel retries it with all the socket holds; a test saw one take a whole 64-buffer ring).
    m_bundled = m_capped && m_bulk; // the kernels with the cap (6.17) have bundles (6.10)
    if (m_bundled)
        sqe->ioprio |= k_recvsend_bundle;
}

void recv_state::on_cqe(int res, unsigned flags) noexcept {
    // Only a buffer the kernel reports as selected is ours to hand out or recycle.
    bool has_buffer = flags & IORING_CQE_F_BUFFER;
    auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    bool keep = has_buffer && res > 0 && !m_orphaned;
    auto queue_piece = [this](std::uint16_t piece_bid, std::uint32_t size, std::uint32_t at) {
        try {
            m_queue.push({piece_bid, size, at});
        } catch (...) {
            std::terminate(); // bounded by the ring's buffer count: growth is rare and tiny
        }
        m_held += m_group->cost_of(size);
    };
    if (has_buffer && m_bundled && res > 0) {
        // One completion, several buffers: a chunk (a lease) per buffer, in order.
        m_group->received_bundle(bid, static_cast<std::uint32_t>(res), keep, queue_piece);
        m_bulk = static_cast<std::uint32_t>(res) >= m_group->buffer_size();
    } else if (has_buffer) {
        std::uint32_t size = res > 0 ? static_cast<std::uint32_t>(res) : 0;
        std::uint32_t at = m_group->received(bid, size, flags & k_cqe_f_buf_more, keep);
        if (keep)
            queue_piece(bid, size, at);
        m_bulk = at + size == m_group->buffer_size(); // filled to its end: more was waiting
    }
    m_group->woken_done(this); // the re-arm after a wake-up has had its answer
    if (keep) {
        ++m_completions;
        m_received += static_cast<std::uint64_t>(res);
        if (!m_armed) {
            // The recv ended with bytes: at its cap or, without one, after its one buffer. Read
            // on while under the limit; at it, the consumer is behind and the rest of the bytes
            // wait in the socket until it catches up (its next wait re-arms).
            if (m_held >= m_group->stream_limit()) {
                ++m_pauses;
            } else {
                m_read_ahead = true;
                request_service();
            }
        }
        wake();
        return;
    }
    if (res == -EINVAL && m_capped) {
        // A kernel before 6.17 refuses the cap (every stream armed before the first answer
        // hears it): one buffer per recv from now on, without bundles (which need the cap).
        // An EINVAL of an uncapped recv is the stream's error.
        m_group->refuse_recv_cap();
        if (!m_orphaned) {
            m_read_ahead = true; // re-arm as the refused recv would have gone on reading
            request_service();
        }
        return;
    }
    if (m_orphaned || res > 0)
        return;
    if (res == 0) {
        m_eof = true;
        wake();
        return;
    }
    if (res == -EINTR) {
        // Interrupted before it took a buffer or a byte: arm again (for a waiting consumer, or
        // reading ahead under the limit). An error here would end a healthy stream.
        m_read_ahead = true;
        request_service();
        return;
    }
    if (res == -ENOBUFS) {
        // The ring ran dry and the kernel ended the multishot; the bytes stay in the socket.
        // Wait in line for a returned buffer (a consumer not waiting re-arms from next()).
        ++m_starvations;
        if (m_waiter) {
            m_group->add_starved(this);
            m_group->wake_one(); // a buffer may have come back since the kernel looked
        }
        return;
    }
    m_error = errno_code(-res);
    wake();
}

void recv_state::read() {
    if (m_socket->native_handle() < 0) {
        // Closed while no recv was armed (between two recvs, or while waiting for a buffer):
        // the stream ends as it does when close() cancels an armed recv, and the fd number,
        // perhaps reused already, is never read.
        m_group->woken_done(this);
        if (!m_error && !m_eof)
            m_error = errno_code(ECANCELED);
        wake();
        return;
    }
    arm();
}

void recv_state::service() {
    // Read ahead for a consumer busy with earlier chunks, while under the limit (a recv that
    // ended with bytes), as a multishot recv would have.
    bool read_ahead = std::exchange(m_read_ahead, false) && !m_armed && !is_starved() &&
                      !m_eof && !m_error && m_held < m_group->stream_limit();
    if (read_ahead && !m_waiter) {
        // Without a free buffer this waits for bytes and then ends in ENOBUFS, as the multishot
        // recv would have; the consumer's next wait then queues for a buffer.
        read();
        return;
    }
    if (m_waiter && !m_armed && !is_starved() && !has_item()) {
        if (starved_node::m_woken &&
            m_wait_deadline_ns != std::numeric_limits<std::int64_t>::max()) {
            // A buffer was promised to us (woken_done on the completion). The idle limit
            // starts again: the wait for a buffer was not the peer's silence.
            m_wait_deadline_ns = corio::detail::monotonic_now_ns() + m_wait_limit_ns;
            queue_idle_timer(m_wait_deadline_ns);
        }
        read();
        return;
    }
    m_group->woken_done(this); // woken for a buffer nobody here wants any more: pass it on
}

void recv_state::on_waiter_left() noexcept {
    m_group->remove_starved(this);
    if (!m_armed)
        m_group->woken_done(this);
}

void recv_state::on_orphaned() noexcept {
    m_loop->remove_timer(&m_idle);
}

void recv_state::on_idle_timer(corio::detail::timer_node* node, bool expired) noexcept {
    recv_state* self = static_cast<idle_timer*>(node)->m_owner;
    stream_waiter* w = self->m_waiter;
    if (!w || self->m_wait_deadline_ns == std::numeric_limits<std::int64_t>::max())
        return; // nobody waits with a deadline: the next timed wait queues the timer again
    if (expired) {
        std::int64_t now = corio::detail::monotonic_now_ns();
        if (self->is_starved())
            self->m_wait_deadline_ns = now + self->m_wait_limit_ns; // not silence: no buffer
        if (now < self->m_wait_deadline_ns) {
            // An earlier wait's deadline (this wait began later), or a starved stream: wait on.
            self->m_idle.m_deadline_ns = self->m_wait_deadline_ns;
            try {
                self->m_loop->add_timer(&self->m_idle); // its slot was just freed: no allocation
            } catch (...) {
                std::terminate();
            }
            return;
        }
    }
    w->leave(); // unregisters the consumer (and its stop callback), like a cancellation
    if (expired)
        w->m_timed_out = true;
    else
        w->m_cancelled = true; // the loop is torn down with the consumer waiting
    self->m_loop->post(&w->m_node);
}

void recv_state::requeue_idle_timer(std::int64_t deadline_ns) {
    m_loop->remove_timer(&m_idle);
    m_idle.m_deadline_ns = deadline_ns;
    m_loop->add_timer(&m_idle); // may throw std::bad_alloc (the first time only)
}

void recv_state::wait_within(stream_waiter& waiter, std::coroutine_handle<> h, stop_token token,
                             std::int64_t limit_ns) {
    std::int64_t deadline = corio::detail::monotonic_now_ns() + limit_ns;
    queue_idle_timer(deadline); // before registering anything: it may throw
    wait(waiter, h, token);
    m_wait_deadline_ns = deadline;
    m_wait_limit_ns = limit_ns;
}

void recv_state::wait(stream_waiter& waiter, std::coroutine_handle<> h, stop_token token) {
    m_wait_deadline_ns = std::numeric_limits<std::int64_t>::max();
    waiter.enqueue(*this, h, token);
    if (waiter.m_cancelled || m_armed || is_starved())
        return;
    read();
}

result<buffer_lease> recv_state::take() noexcept {
    if (!m_queue.empty()) {
        item next = m_queue.pop();
        m_held -= m_group->cost_of(next.size);
        return buffer_lease(*m_group, next.bid, next.size, next.offset);
    }
    if (m_error)
        return m_error;
    assert(m_eof && "a recv_stream consumer woke with nothing to take");
    return buffer_lease();
}

} // namespace detail

buffer_ring::buffer_ring(io_context& ctx, unsigned count, std::uint32_t buffer_size, int group_id,
                         buffer_use use)
    : m_group(new detail::buffer_group(ctx, count, buffer_size, group_id,
                                       use == buffer_use::incremental)) {}

recv_stream::recv_stream(const basic_socket& socket, buffer_ring& ring)
    : m_state(new detail::recv_state(io_context::current(), socket, ring.group())) {}

} // namespace corio::net
