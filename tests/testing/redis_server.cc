#include "tests/testing/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace rnnserve::testing {
namespace {

// A loopback port nobody listens on now. Another process may take it before
// redis-server binds it; Start() then fails the test, which is rare enough.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool Answers(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

RedisServer::RedisServer(std::vector<std::string> extra)
    : extra_(std::move(extra)) {
  char pattern[] = "/tmp/rnnserve-redis-XXXXXX";
  const char* dir = mkdtemp(pattern);
  EXPECT_NE(dir, nullptr) << "mkdtemp failed";
  dir_ = dir == nullptr ? "/tmp" : dir;
  port_ = FreePort();
  EXPECT_NE(port_, 0) << "no free loopback port";
  Start();
}

RedisServer::~RedisServer() {
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::url() const {
  return absl::StrCat("redis://127.0.0.1:", port_);
}

void RedisServer::Start() {
  std::vector<std::string> words = {"redis-server",
                                    "--port",
                                    absl::StrCat(port_),
                                    "--bind",
                                    "127.0.0.1",
                                    "--dir",
                                    dir_,
                                    "--save",
                                    "",
                                    "--appendonly",
                                    "no",
                                    "--daemonize",
                                    "no",
                                    "--logfile",
                                    dir_ + "/redis.log",
                                    "--protected-mode",
                                    "no"};
  words.insert(words.end(), extra_.begin(), extra_.end());
  pid_ = fork();
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    execvp("redis-server", argv.data());
    _exit(127);
  }
  ASSERT_GT(pid_, 0) << "fork failed";
  WaitUntilAnswering();
}

void RedisServer::WaitUntilAnswering() {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!Answers(port_)) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "redis-server exited at start (status " << status
             << "); is the redis-server package installed? Log: " << dir_
             << "/redis.log";
    }
    if (absl::Now() > give_up) {
      FAIL() << "redis-server did not listen on port " << port_
             << " within 10 s";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGCONT);  // A paused server must die too.
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RedisServer::Restart() {
  Kill();
  Start();
}

void RedisServer::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void RedisServer::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

}  // namespace rnnserve::testing
