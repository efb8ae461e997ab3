// rnnserve's flags turned into its options: every flag reaches its option,
// the defaults are the documented ones, and every mistake names its flag.
#include "server/options_from_flags.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Parses `args` as rnnserve does, then converts.
absl::StatusOr<ProgramOptions> FromArgs(const std::vector<std::string>& args) {
  ServerFlags values;
  FlagSet flags("rnnserve [flags]", "");
  AddServerFlags(flags, values);
  auto parsed = flags.Parse(args);
  if (!parsed.ok()) return parsed.status();
  EXPECT_TRUE(parsed->empty());
  return OptionsFromFlags(values);
}

// A file of this process's own: tests run in parallel, in other processes.
std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path =
      ::testing::TempDir() + "/" + std::to_string(getpid()) + "." + name;
  std::ofstream(path) << text;
  return path;
}

TEST(OptionsFromFlagsTest, DefaultsAreTheDocumentedOnes) {
  auto o = FromArgs({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->model_repository, "models");
  EXPECT_EQ(o->metrics_address, "localhost:8002");
  EXPECT_EQ(o->drain_delay, absl::Seconds(5));
  EXPECT_EQ(o->shutdown_grace, absl::Seconds(10));
  const service::ServerOptions& s = o->server;
  EXPECT_EQ(s.grpc_address, "localhost:50051");
  EXPECT_EQ(s.queue.max_batch_size, 64);
  EXPECT_EQ(s.queue.max_queue_delay, absl::ZeroDuration());
  EXPECT_EQ(s.queue.max_queued_items, 1024);
  EXPECT_GE(s.compute_threads, 1);
  EXPECT_EQ(s.engine_threads, 1);
  EXPECT_EQ(s.limits.max_steps, 10000);
  EXPECT_EQ(s.limits.max_sequences_per_request, 256);
  EXPECT_EQ(s.max_message_bytes, 64 << 20);
  EXPECT_EQ(s.max_streams_per_connection, 2048);
  EXPECT_EQ(s.keepalive_time, absl::Minutes(1));
  EXPECT_EQ(s.sessions.idle_ttl, absl::Minutes(10));
  EXPECT_EQ(s.sessions.max_sessions, 10000);
  EXPECT_THAT(s.warmup_steps, ElementsAre(1, 10, 28));
  EXPECT_FALSE(s.tls.enabled());
  EXPECT_FALSE(s.bearer_tokens.has_value());
}

TEST(OptionsFromFlagsTest, EveryFlagReachesItsOption) {
  const std::string tokens =
      WriteFile("tokens", "# comment\n0123456789abcdef0123\n");
  auto o = FromArgs(
      {"--model-repository=/m",      "--grpc-address=0.0.0.0:1",
       "--metrics-address=",         "--max-batch-size=8",
       "--max-queue-delay=3ms",      "--max-queued-items=99",
       "--max-queued-steps=1234",    "--max-queued-values=5678",
       "--compute-threads=3",        "--engine-threads=2",
       "--max-sequence-length=500",  "--max-sequences-per-request=7",
       "--max-message-bytes=4096",   "--max-streams-per-connection=5",
       "--keepalive-time=30s",       "--session-idle-ttl=1m",
       "--max-sessions=12",          "--max-server-memory-bytes=33554432",
       "--max-sessions-per-token=3", "--max-calls-per-token=4",
       "--drain-delay=2s",           "--shutdown-grace=20s",
       "--warmup-steps=4,,9",        "--auth-tokens-file=" + tokens});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->model_repository, "/m");
  EXPECT_EQ(o->metrics_address, "");
  EXPECT_EQ(o->drain_delay, absl::Seconds(2));
  EXPECT_EQ(o->shutdown_grace, absl::Seconds(20));
  const service::ServerOptions& s = o->server;
  EXPECT_EQ(s.grpc_address, "0.0.0.0:1");
  EXPECT_EQ(s.queue.max_batch_size, 8);
  EXPECT_EQ(s.queue.max_queue_delay, absl::Milliseconds(3));
  EXPECT_EQ(s.queue.max_queued_items, 99);
  EXPECT_EQ(s.queue.max_queued_steps, 1234);
  EXPECT_EQ(s.queue.max_queued_values, 5678);
  EXPECT_EQ(s.compute_threads, 3);
  EXPECT_EQ(s.engine_threads, 2);
  EXPECT_EQ(s.limits.max_steps, 500);
  EXPECT_EQ(s.limits.max_sequences_per_request, 7);
  EXPECT_EQ(s.max_message_bytes, 4096);
  EXPECT_EQ(s.max_streams_per_connection, 5);
  EXPECT_EQ(s.keepalive_time, absl::Seconds(30));
  EXPECT_EQ(s.sessions.idle_ttl, absl::Minutes(1));
  EXPECT_EQ(s.sessions.max_sessions, 12);
  EXPECT_EQ(s.max_server_memory_bytes, 32 << 20);
  EXPECT_EQ(s.sessions.max_sessions_per_owner, 3);
  EXPECT_EQ(s.max_calls_per_token, 4);
  EXPECT_THAT(s.warmup_steps, ElementsAre(4, 9));
  ASSERT_TRUE(s.bearer_tokens.has_value());
  EXPECT_EQ(s.bearer_tokens->size(), 1u);
}

TEST(OptionsFromFlagsTest, MistakesNameTheirFlag) {
  const std::string empty = WriteFile("no_tokens", "# none yet\n\n");
  const std::string cert = WriteFile("cert.pem", "not a certificate");
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {{"--keepalive-time=500ms"}, {"--keepalive-time", "at least 1s"}},
      {{"--warmup-steps=1,x"}, {"--warmup-steps", "\"1,x\""}},
      {{"--warmup-steps=0"}, {"--warmup-steps", "positive"}},
      {{"--auth-tokens-file=/nonexistent/tokens"},
       {"--auth-tokens-file", "/nonexistent/tokens"}},
      {{"--auth-tokens-file=" + empty}, {"--auth-tokens-file", empty}},
      {{"--tls-cert=" + cert}, {"--tls-cert", "--tls-key"}},
      {{"--drain-delay=-1s"}, {"--drain-delay", "a duration"}},
      {{"--shutdown-grace=soon"}, {"--shutdown-grace", "a duration"}},
      {{"--max-batch-size=0"}, {"--max-batch-size", "[1, 1024]"}},
  };
  for (const Case& c : cases) {
    auto o = FromArgs(c.args);
    ASSERT_FALSE(o.ok()) << c.args[0];
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument)
        << c.args[0];
    for (const std::string& word : c.words) {
      EXPECT_THAT(o.status().message(), HasSubstr(word)) << c.args[0];
    }
  }
}

TEST(OptionsFromFlagsTest, HelpDocumentsTheShutdownFlags) {
  ServerFlags values;
  FlagSet flags("rnnserve [flags]", "");
  AddServerFlags(flags, values);
  const std::string help = flags.Help();
  EXPECT_THAT(help, HasSubstr("--drain-delay (duration, default: 5s)"));
  EXPECT_THAT(help, HasSubstr("--shutdown-grace (duration, default: 10s)"));
  EXPECT_THAT(help, HasSubstr("NOT_SERVING"));
  EXPECT_THAT(help, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace rnnserve
