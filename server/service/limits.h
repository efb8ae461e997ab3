// Bounds on what one request may ask for.
#ifndef RNNSERVE_SERVER_SERVICE_LIMITS_H_
#define RNNSERVE_SERVER_SERVICE_LIMITS_H_

namespace rnnserve::service {

struct Limits {
  // Most time steps in one sequence or chunk. Default 10000.
  int max_steps = 10000;
  // Most sequences in one Classify request. Default 256.
  int max_sequences_per_request = 256;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_LIMITS_H_
