// SPDX-License-Identifier: MIT
// The output path of corio-kv without sockets: stored values shared copy-on-write, replies that
// splice long values in by reference, the room limit of a reply_writer, and the output queue's
// gather/consume under partial sends of every size.
#include "output.hpp"

#include "reply.hpp"
#include "value.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

std::string long_text(char c, std::size_t n = kv::value::k_shared_min) {
    std::string s(n, c);
    for (std::size_t i = 0; i < n; i += 97)
        s[i] = static_cast<char>('a' + i % 26);
    return s;
}

std::string bulk(const std::string& s) {
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

/// Sends everything `q` has, `step` bytes per "send" (0: all gather() offers), appending to `sent`.
void drain(kv::output_queue& q, std::string& sent, std::size_t step) {
    iovec space[kv::output_queue::k_max_iov];
    for (;;) {
        std::span<const iovec> iov = q.gather(space);
        if (iov.empty())
            return;
        std::size_t total = 0;
        for (const iovec& v : iov)
            total += v.iov_len;
        std::size_t n = step == 0 ? total : std::min(step, total);
        std::size_t left = n;
        for (const iovec& v : iov) {
            std::size_t take = std::min(left, v.iov_len);
            sent.append(static_cast<const char*>(v.iov_base), take);
            left -= take;
        }
        q.consume(n);
    }
}

} // namespace

TEST_CASE("value: short values live inline, long ones in a shared buffer") {
    kv::value v;
    v.assign("short");
    CHECK(v.view() == "short");
    CHECK_FALSE(v.is_shared());
    std::string big = long_text('x');
    v.assign(big);
    CHECK(v.is_shared());
    CHECK(v.view() == big);
    v.assign("again short");
    CHECK_FALSE(v.is_shared());
    CHECK(v.view() == "again short");
}

TEST_CASE("value: a shared version never changes; an unshared buffer is reused") {
    kv::value v;
    std::string first = long_text('1');
    v.assign(first);
    const std::string* buffer = v.share().get();
    v.assign(long_text('2')); // nobody holds the buffer: written in place
    CHECK(v.share().get() == buffer);

    std::shared_ptr<const std::string> held = v.share(); // a reply being sent
    v.assign(long_text('3'));
    CHECK(*held == long_text('2'));
    CHECK(v.view() == long_text('3'));
    v.append("tail");
    CHECK(*held == long_text('2'));
    CHECK(v.view() == long_text('3') + "tail");
}

TEST_CASE("value: APPEND crosses into the shared buffer and keeps every byte") {
    kv::value v;
    v.assign("head:");
    std::string more = long_text('m');
    v.append(more);
    CHECK(v.is_shared());
    CHECK(v.view() == "head:" + more);
    std::shared_ptr<const std::string> held = v.share();
    v.append("!");
    CHECK(*held == "head:" + more);
    CHECK(v.view() == "head:" + more + "!");
}

TEST_CASE("reply_writer: long values are spliced into a reply_buffer, short ones copied") {
    kv::value big;
    big.assign(long_text('b'));
    kv::value small;
    small.assign("tiny");
    kv::reply_buffer out;
    kv::reply_writer w(out);
    w.array(2);
    w.bulk(big);
    w.bulk(small);
    REQUIRE(out.splices.size() == 1);
    CHECK(out.splices[0].value.get() == big.share().get());
    CHECK(out.spliced_bytes == big.size());
    CHECK(out.size() == bulk(long_text('b')).size() + bulk("tiny").size() + 4);

    std::string plain; // a std::string target copies everything
    kv::reply_writer p(plain);
    p.bulk(big);
    CHECK(plain == bulk(long_text('b')));
}

TEST_CASE("reply_writer: what does not fit the room is refused, and everything after it") {
    std::string out;
    kv::reply_writer w(out);
    w.set_room(12);
    w.ok();        // 5
    w.bulk("abc"); // 9: does not fit in the 7 left
    w.integer(1);  // 4 would fit, but the stream is broken from the first refusal on
    CHECK(out == "+OK\r\n");
    CHECK(w.overflowed());
    CHECK(w.refused() == 13);
    w.clear_room();
    w.ok();
    CHECK_FALSE(w.overflowed());
    CHECK(out == "+OK\r\n+OK\r\n");
}

TEST_CASE("output_queue: partial sends of every size deliver the exact byte stream") {
    std::vector<kv::value> values(3);
    values[0].assign(long_text('a'));
    values[1].assign(long_text('b', 3 * kv::value::k_shared_min + 5));
    values[2].assign("short");
    for (std::size_t step : {0u, 1u, 2u, 7u, 4096u, 16385u, 100000u}) {
        INFO("step " << step);
        kv::output_queue q;
        kv::reply_writer w(q.filling());
        std::string want;
        std::string sent;
        for (int round = 0; round < 3; ++round) {
            for (const kv::value& v : values) {
                w.bulk(v);
                want += bulk(std::string(v.view()));
            }
            w.ok();
            want += "+OK\r\n";
            // Half sent, then more appended while the rest of the first block is still out.
            iovec space[kv::output_queue::k_max_iov];
            std::span<const iovec> iov = q.gather(space);
            REQUIRE(!iov.empty());
            const void* first = iov[0].iov_base;
            w.bulk(values[1]);
            want += bulk(std::string(values[1].view()));
            w.simple("later");
            want += "+later\r\n";
            std::span<const iovec> again = q.gather(space);
            CHECK(again[0].iov_base == first); // appends went to the other block
            CHECK(q.pending() == want.size() - sent.size());
            drain(q, sent, step);
        }
        CHECK(q.pending() == 0);
        CHECK(sent == want);
    }
}

TEST_CASE("output_queue: a held block waits for release; clear drops everything") {
    kv::output_queue q;
    kv::reply_writer w(q.filling());
    q.hold();
    w.ok();
    iovec space[kv::output_queue::k_max_iov];
    CHECK(q.gather(space).empty());
    CHECK_FALSE(q.has_sendable());
    CHECK(q.pending() == 5);
    q.release();
    CHECK(q.has_sendable());
    std::string sent;
    drain(q, sent, 2);
    CHECK(sent == "+OK\r\n");
    w.ok();
    w.ok();
    CHECK(q.clear() == 10);
    CHECK(q.pending() == 0);
    CHECK(q.gather(space).empty());
}

TEST_CASE("output_queue: a spliced value is let go once it is sent") {
    kv::value v;
    v.assign(long_text('v'));
    kv::output_queue q;
    kv::reply_writer w(q.filling());
    w.bulk(v);
    w.bulk(v);
    CHECK(v.share().use_count() == 3 + 1); // the value, two splices, and this temporary
    std::string sent;
    iovec space[kv::output_queue::k_max_iov];
    std::span<const iovec> iov = q.gather(space);
    REQUIRE(iov.size() == 5); // header, value, CRLF and header, value, CRLF
    std::size_t through_first = iov[0].iov_len + iov[1].iov_len;
    q.consume(through_first);
    CHECK(v.share().use_count() == 2 + 1);
    drain(q, sent, 0);
    CHECK(v.share().use_count() == 1 + 1);
}
