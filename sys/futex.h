// Process-shared futex waits on words in a MAP_SHARED mapping.
#pragma once

#include <atomic>
#include <cstdint>

namespace ro::sys {

// Sleeps while `word` holds `expected`, at most `timeout_ms`. Spurious
// wake-ups happen: callers re-check their condition.
void FutexWait(const std::atomic<uint32_t>& word, uint32_t expected, int timeout_ms);
void FutexWakeAll(std::atomic<uint32_t>& word);

// CLOCK_MONOTONIC in nanoseconds.
uint64_t MonotonicNs();

}  // namespace ro::sys
