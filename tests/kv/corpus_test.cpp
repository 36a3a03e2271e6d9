// SPDX-License-Identifier: MIT
// Replays every file of the RESP fuzz corpus (tests/fuzz/corpus/resp/) through the fuzz target's
// own function, so the normal suite checks the parser's invariants on each one.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

TEST_CASE("every RESP fuzz corpus file passes the fuzz target's checks") {
    fs::path dir = fs::path(CORIO_SOURCE_ROOT) / "tests" / "fuzz" / "corpus" / "resp";
    REQUIRE(fs::is_directory(dir));
    std::size_t files = 0;
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
        if (!e.is_regular_file())
            continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        std::string data = s.str();
        INFO(e.path().filename().string());
        CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()),
                                     data.size()) == 0);
        ++files;
    }
    CHECK(files >= 24);
}
