// A real redis-server for tests: started on a free loopback port in a
// temporary folder, stopped (and its folder removed) when the object goes.
#ifndef RNNSERVE_TESTS_TESTING_REDIS_SERVER_H_
#define RNNSERVE_TESTS_TESTING_REDIS_SERVER_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace rnnserve::testing {

// Not thread-safe; one test thread drives it.
class RedisServer {
 public:
  // Starts redis-server with no persistence; `extra` are more
  // `--name value` words for its command line (e.g. {"--requirepass",
  // "x"}). Fails the test when it does not answer PING within 10 s.
  explicit RedisServer(std::vector<std::string> extra = {});
  ~RedisServer();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // redis://127.0.0.1:PORT
  std::string url() const;

  // SIGKILL, then start again on the same port with the same data folder.
  void Restart();
  // SIGSTOP / SIGCONT: the server stops answering without closing sockets.
  void Pause();
  void Resume();
  // SIGKILL; Start() brings it back.
  void Kill();
  void Start();

 private:
  void WaitUntilAnswering();

  std::vector<std::string> extra_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace rnnserve::testing

#endif  // RNNSERVE_TESTS_TESTING_REDIS_SERVER_H_
