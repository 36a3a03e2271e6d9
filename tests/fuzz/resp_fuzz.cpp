// SPDX-License-Identifier: MIT
// libFuzzer target of the kv RESP parser (examples/kv/resp_parser.hpp), and through it of command
// dispatch: the input is parsed whole and again in pieces split where its first bytes say, both
// must agree command for command, every view must lie inside the input, and every parsed command
// runs against a fresh store (on a fixed clock) whose replies must be well-formed RESP. tests/kv
// replays the seed corpus (tests/fuzz/corpus/resp/) through this same function.
#include "commands.hpp"
#include "reply.hpp"
#include "resp_parser.hpp"
#include "store.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "resp_fuzz: check failed: %s (line %d)\n", #cond, __LINE__);     \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

/// Length of the well-formed RESP reply at the front of `r`, or 0.
std::size_t reply_length(std::string_view r, int depth = 0) {
    std::size_t nl = r.find("\r\n");
    if (r.empty() || nl == std::string_view::npos || depth > 8)
        return 0;
    char type = r[0];
    if (type == '+' || type == '-' || type == ':')
        return nl + 2;
    long long n = std::strtoll(std::string(r.substr(1, nl - 1)).c_str(), nullptr, 10);
    std::size_t pos = nl + 2;
    if (type == '$') {
        if (n < 0)
            return pos;
        std::size_t end = pos + static_cast<std::size_t>(n);
        if (r.size() < end + 2 || r.substr(end, 2) != "\r\n")
            return 0;
        return end + 2;
    }
    if (type == '*') {
        for (long long i = 0; i < n; ++i) {
            std::size_t len = reply_length(r.substr(pos), depth + 1);
            if (len == 0)
                return 0;
            pos += len;
        }
        return pos;
    }
    return 0;
}

/// What parsing `input` yields: commands joined by NUL-free markers, or the error text.
std::vector<std::string> parse_pieces(std::string_view input, std::size_t step,
                                      const kv::parser_limits& limits, kv::engine* run) {
    kv::resp_parser parser(limits);
    std::vector<std::string> out;
    std::string buffer;
    std::size_t fed = 0;
    std::size_t pos = 0;
    std::string reply;
    for (;;) {
        std::string_view pending = std::string_view(buffer).substr(pos);
        kv::parse_status st = parser.parse(pending);
        if (st == kv::parse_status::need_more) {
            FUZZ_CHECK(parser.consumed() == 0);
            if (fed == input.size())
                return out;
            std::size_t more = step == 0 ? input.size() - fed : step;
            if (more > input.size() - fed)
                more = input.size() - fed;
            std::string grown = buffer; // a new allocation: views must not survive a move
            grown.append(input.substr(fed, more));
            buffer.swap(grown);
            fed += more;
            continue;
        }
        if (st == kv::parse_status::error) {
            FUZZ_CHECK(parser.error_text().starts_with("Protocol error: "));
            out.push_back("error:" + std::string(parser.error_text()));
            return out;
        }
        FUZZ_CHECK(parser.consumed() > 0);
        FUZZ_CHECK(parser.consumed() <= pending.size());
        if (st == kv::parse_status::command) {
            const auto& args = parser.args();
            FUZZ_CHECK(!args.empty());
            std::string joined = "cmd";
            for (std::string_view a : args) {
                joined += ":" + std::to_string(a.size()) + ":";
                joined.append(a);
            }
            out.push_back(std::move(joined));
            if (run) {
                reply.clear();
                kv::reply_writer w(reply);
                (void)run->execute(args, w);
                FUZZ_CHECK(reply_length(reply) == reply.size());
            }
        }
        pos += parser.consumed();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    // The first byte picks the piece size for the split run (0: whole at once).
    std::size_t step = data[0] % 17;
    std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    kv::parser_limits limits;
    limits.max_bulk_length = 4096; // small limits: the limit paths get exercised
    limits.max_arguments = 64;
    limits.max_inline_length = 256;

    kv::store keyspace([] { return std::int64_t{1'700'000'000'000}; });
    kv::engine engine(keyspace);
    std::string log;
    engine.set_propagation(&log);
    std::vector<std::string> whole = parse_pieces(input, 0, limits, &engine);
    std::vector<std::string> split = parse_pieces(input, step == 0 ? 1 : step, limits, nullptr);
    // An error found later in a longer input is still the same sequence up to it; inputs that
    // hit the line limits may differ only in where "need more" turned into an error, so compare
    // the commands found before any error.
    std::size_t common = whole.size() < split.size() ? whole.size() : split.size();
    for (std::size_t i = 0; i < common; ++i) {
        if (whole[i].starts_with("error:") || split[i].starts_with("error:"))
            break;
        FUZZ_CHECK(whole[i] == split[i]);
    }
    // Every record the commands logged replays.
    kv::store replayed([] { return std::int64_t{1'700'000'000'000}; });
    kv::engine replayer(replayed);
    kv::resp_parser records;
    std::string_view rest = log;
    std::string reply;
    while (!rest.empty()) {
        kv::parse_status st = records.parse(rest);
        FUZZ_CHECK(st == kv::parse_status::command);
        reply.clear();
        kv::reply_writer w(reply);
        (void)replayer.execute(records.args(), w);
        FUZZ_CHECK(!reply.starts_with("-ERR unknown command"));
        rest.remove_prefix(records.consumed());
    }
    FUZZ_CHECK(replayed.size() == keyspace.size());
    return 0;
}
