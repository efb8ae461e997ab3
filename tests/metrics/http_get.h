// A plain-socket HTTP/1.1 GET, enough to read /metrics as a scraper does.
#ifndef RNNSERVE_TESTS_METRICS_HTTP_GET_H_
#define RNNSERVE_TESTS_METRICS_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"

namespace rnnserve::metrics::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;  // The status line and headers, as received.
  std::string body;
};

// GETs `path` from 127.0.0.1:`port`, reading until the server closes.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path);

}  // namespace rnnserve::metrics::testing

#endif  // RNNSERVE_TESTS_METRICS_HTTP_GET_H_
