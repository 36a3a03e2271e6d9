// SPDX-License-Identifier: MIT
#include <corio/runtime/offload.hpp>

#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/when_all.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace corio;
using namespace std::chrono_literals;

namespace {

struct shared_flag {
    std::atomic<bool> set{false};
};

/// Blocks its worker until `flag` is set (bounded: gives up after 10 s and says so).
task<bool> blocked_job(shared_flag* flag, std::vector<std::string>* log) {
    auto wait_for_flag = [flag] {
        auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!flag->set.load()) {
            if (std::chrono::steady_clock::now() > give_up)
                return false;
            std::this_thread::sleep_for(100us);
        }
        return true;
    };
    bool released = co_await offload(wait_for_flag);
    log->push_back("job");
    co_return released;
}

task<bool> timer_then_release(shared_flag* flag, std::vector<std::string>* log) {
    result<void> r = co_await sleep_for(5ms);
    log->push_back("timer");
    flag->set.store(true);
    co_return r.has_value();
}

task<bool> timer_during_job(std::vector<std::string>* log) {
    shared_flag flag;
    auto all = when_all(blocked_job(&flag, log), timer_then_release(&flag, log));
    auto [released, fired] = co_await all;
    co_return released && fired;
}

task<std::string> offload_value_and_thread() {
    std::thread::id loop_thread = std::this_thread::get_id();
    auto worker_id = [] { return std::this_thread::get_id(); };
    std::thread::id worker = co_await offload(worker_id);
    bool back_on_loop = std::this_thread::get_id() == loop_thread;
    co_return std::string(worker != loop_thread ? "worker" : "loop") +
        (back_on_loop ? "+loop" : "+elsewhere");
}

task<std::string> offload_exception() {
    auto fails = []() -> int { throw std::runtime_error("from the pool"); };
    try {
        int v = co_await offload(fails);
        co_return std::to_string(v);
    } catch (const std::runtime_error& e) {
        co_return e.what();
    }
}

task<long> one_job(int i) {
    auto square = [i] { return static_cast<long>(i) * i; };
    long v = co_await offload(square);
    co_return v;
}

task<long> many_jobs(int n) {
    std::vector<task<long>> jobs;
    for (int i = 0; i < n; ++i)
        jobs.push_back(one_job(i));
    auto all = when_all(std::move(jobs));
    std::vector<long> squares = co_await all;
    long sum = 0;
    for (long s : squares)
        sum += s;
    co_return sum;
}

} // namespace

TEST_CASE("a timer fires while an offloaded job blocks its worker") {
    std::vector<std::string> log;
    CHECK(sync_wait(timer_during_job(&log)));
    CHECK(log == std::vector<std::string>{"timer", "job"});
}

TEST_CASE("offload runs on a worker and resumes on the loop thread with the value") {
    CHECK(sync_wait(offload_value_and_thread()) == "worker+loop");
}

TEST_CASE("an exception thrown by offloaded work is rethrown in the awaiting task") {
    CHECK(sync_wait(offload_exception()) == "from the pool");
}

TEST_CASE("200 offloaded jobs on two workers all deliver their results") {
    CHECK(sync_wait(many_jobs(200)) == 199L * 200 * 399 / 6);
}
