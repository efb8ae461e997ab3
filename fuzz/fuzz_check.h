// FUZZ_CHECK(condition): a property the code under test promises. When it
// does not hold, libFuzzer must see a crash and keep the input, so abort.
#ifndef RNNSERVE_FUZZ_FUZZ_CHECK_H_
#define RNNSERVE_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                          \
  do {                                                                 \
    if (!(condition)) {                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #condition);                              \
      std::abort();                                                    \
    }                                                                  \
  } while (false)

#endif  // RNNSERVE_FUZZ_FUZZ_CHECK_H_
