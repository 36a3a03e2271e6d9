// SPDX-License-Identifier: MIT
// libFuzzer target of the kv append-only-file loader (examples/kv/aof.hpp, replay_log): any bytes
// are replayed into a fresh store (on a fixed clock); the report must be consistent (a clean log
// ends at the end, a truncated tail or a corrupt record at good_length, with the offset in the
// message), the accepted prefix alone must replay cleanly to the same records, and a clean log cut
// at the point the first byte picks must read as a torn tail there (or, when the cut lands in a
// value holding RESP, be refused by rule 2). tests/kv replays the seed corpus
// (tests/fuzz/corpus/aof/) through kv_aof_fuzz_one.
#include "aof.hpp"
#include "commands.hpp"
#include "store.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

#define AOF_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "aof_fuzz: check failed: %s (line %d)\n", #cond, __LINE__);       \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

constexpr std::int64_t k_now_ms = 1'700'000'000'000;

kv::replay_report replay(std::string_view log) {
    kv::store keyspace([] { return k_now_ms; });
    kv::engine engine(keyspace);
    return kv::replay_log(log, engine);
}

/// The report of `log` is consistent in itself.
void check_report(std::string_view log, const kv::replay_report& r) {
    AOF_FUZZ_CHECK(r.good_length <= log.size());
    if (r.ok && r.truncated_bytes == 0)
        AOF_FUZZ_CHECK(r.good_length == log.size());
    if (r.ok && r.truncated_bytes > 0)
        AOF_FUZZ_CHECK(r.good_length + r.truncated_bytes == log.size());
    if (!r.ok) {
        AOF_FUZZ_CHECK(r.good_length < log.size());
        AOF_FUZZ_CHECK(r.truncated_bytes == 0);
        AOF_FUZZ_CHECK(r.error_offset >= r.good_length);
        AOF_FUZZ_CHECK(
            r.error.starts_with("corrupt record at byte " + std::to_string(r.good_length) + ": "));
    }
    AOF_FUZZ_CHECK(r.records <= r.good_length / 4 + (r.good_length > 0)); // `*1\r\n` at least
}

} // namespace

int kv_aof_fuzz_one(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    std::size_t cut_pick = data[0]; // picks where a clean log is cut
    std::string_view log(reinterpret_cast<const char*>(data + 1), size - 1);
    kv::replay_report r = replay(log);
    check_report(log, r);

    // What a repair keeps replays cleanly on its own, record for record.
    kv::replay_report kept = replay(log.substr(0, r.good_length));
    check_report(log.substr(0, r.good_length), kept);
    AOF_FUZZ_CHECK(kept.ok);
    AOF_FUZZ_CHECK(kept.truncated_bytes == 0);
    AOF_FUZZ_CHECK(kept.records == r.records);

    // A clean log cut short, as a crash does: a torn tail at the cut's record, never more lost.
    if (r.ok && r.truncated_bytes == 0 && !log.empty()) {
        std::size_t cut = cut_pick * log.size() / 256;
        kv::replay_report torn = replay(log.substr(0, cut));
        check_report(log.substr(0, cut), torn);
        AOF_FUZZ_CHECK(torn.good_length <= cut);
        if (torn.ok)
            AOF_FUZZ_CHECK(torn.records <= r.records);
        else
            AOF_FUZZ_CHECK(torn.error.find("points past the next record") != std::string::npos);
    }
    return 0;
}

#ifdef CORIO_FUZZ_TARGET
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return kv_aof_fuzz_one(data, size);
}
#endif
