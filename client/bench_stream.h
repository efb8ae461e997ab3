// The streaming workload of `rnnctl bench`: each worker is one session on
// its own Regress stream, sending chunks back to back (the next chunk as
// soon as the previous one is answered). Built on ClientBidiReactor, so a
// thousand sessions need no thousand threads.
#ifndef RNNSERVE_CLIENT_BENCH_STREAM_H_
#define RNNSERVE_CLIENT_BENCH_STREAM_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/bench_load.h"
#include "client/connection.h"

namespace rnnserve::client {

struct StreamBenchPlan {
  std::string model;
  uint32_t chunk_steps = 10;
  std::vector<float> chunk_values;  // chunk_steps * input_size values.
  // Deadline of every stream; absl::InfiniteFuture() for none.
  absl::Time deadline = absl::InfiniteFuture();
};

// Starts worker `worker` on channel worker % channels. Each answered chunk
// is one operation of chunk_steps units. When control stops, the session is
// ended (a last request with end_session) and the stream closed; a stream
// that fails is counted as one error and replaced by a new session.
// `plan` and `connection` must outlive control.Finish().
void StartStreamWorker(LoadControl& control, int worker,
                       const Connection& connection,
                       const StreamBenchPlan& plan);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_BENCH_STREAM_H_
