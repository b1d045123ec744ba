// Names the calling thread (Linux: at most 15 characters shown), so `top -H`,
// perf and /proc/<pid>/task/*/comm tell the scheduler and kernel workers from
// Node's own threads. A no-op where the platform has no such call.
#pragma once
#if defined(__linux__)
#include <pthread.h>
#endif

namespace neoserve {

inline void name_this_thread(const char* name) {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

}  // namespace neoserve
