// What `rnnctl stream` prints: the summary lines shared by the sine demo and
// a --tokens / --text / --csv run, and the step table of the latter.
//
// Plain functions that write to stdout; call them from one thread.
#ifndef RNNSERVE_CLIENT_STREAM_REPORT_H_
#define RNNSERVE_CLIENT_STREAM_REPORT_H_

#include <cstdint>
#include <string>

#include "client/stream_inputs.h"

namespace rnnserve::client {

// The flags of rnnctl stream that shape what it prints.
struct StreamReportOptions {
  std::string model;
  int64_t chunk = 10;
  bool unary = false;
  int64_t reconnect_every = 0;
  bool print_token = false;
  bool quiet = false;
  int64_t top_k = 0;
};

// The session token, shortened to its first 8 characters unless `full`:
// the token is the session's only credential.
std::string ShortToken(const std::string& token, bool full);

// The summary lines on steps, chunks, calls and retries.
void PrintCalls(const StreamReportOptions& o, size_t steps,
                const SessionTally& tally);

// The summary line on the session, with how to continue an open one;
// `next` holds the flags that say what to send next.
void PrintSession(const StreamReportOptions& o, bool ended,
                  const std::string& token, uint64_t next_step,
                  const std::string& next);

// Prints every step (unless quiet) and the summary of a --tokens, --text or
// --csv run: each step's outputs, or its best classes with top_k.
void PrintSequenceReport(const StreamReportOptions& o,
                         const StreamInputs& inputs, const SequenceRun& run);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_STREAM_REPORT_H_
