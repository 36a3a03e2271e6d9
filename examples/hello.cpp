// SPDX-License-Identifier: MIT
// hello: a first tour of corio. Three coroutines share one thread and one io_uring: a ticking
// timer, a blocking job handed to the offload pool, and a race with a deadline. Each reads like
// straight-line thread code; the loop interleaves them. Try: build/release/examples/hello
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

namespace {

corio::task<void> ticker(int ticks) {
    for (int i = 1; i <= ticks; ++i) {
        corio::result<void> slept = co_await corio::sleep_for(20ms);
        slept.value();
        std::printf("  tick %d (the loop is free while the job below blocks a worker)\n", i);
    }
}

corio::task<long> blocking_job() {
    auto count_primes = [] {
        std::this_thread::sleep_for(50ms); // stands in for a blocking call: getaddrinfo, readdir
        long primes = 0;
        for (long n = 2; n < 200'000; ++n) {
            bool prime = true;
            for (long d = 2; d * d <= n && prime; ++d)
                prime = n % d != 0;
            primes += prime;
        }
        return primes;
    };
    long primes = co_await corio::offload(count_primes);
    std::printf("  offloaded job: %ld primes below 200000\n", primes);
    co_return primes;
}

corio::task<int> slow_answer() {
    corio::result<void> slept = co_await corio::sleep_for(10s);
    slept.value(); // throws operation_canceled when the deadline wins: the timeout reports it
    co_return 42;
}

corio::task<void> tour() {
    auto both = corio::when_all(ticker(5), blocking_job());
    co_await both;

    corio::result<int> answer = co_await corio::timeout(slow_answer(), 30ms);
    std::printf("  a 10 s wait under a 30 ms deadline: %s\n",
                answer ? "finished" : answer.error().message().c_str());
}

} // namespace

int main() {
    corio::io_context ctx;
    std::printf("corio hello: one thread, one ring\n");
    corio::sync_wait(ctx, tour());
    corio::io_context_stats s = ctx.stats();
    std::printf("stats: %llu loop turns, %llu SQEs submitted, %llu CQEs reaped, %llu kernel "
                "entries, %zu ops in flight, %zu live tasks\n",
                static_cast<unsigned long long>(s.loop_turns),
                static_cast<unsigned long long>(s.submitted),
                static_cast<unsigned long long>(s.completed),
                static_cast<unsigned long long>(s.kernel_enters), s.ops_in_flight, s.live_tasks);
    return 0;
}
