// What rnnctl prints of model versions and of the repository service, from
// messages built as the server sends them: the index table, a model's
// versions with their states, the sub-command parsing and the errors told
// in operator's terms.
#include "client/repository_view.h"

#include <string>
#include <vector>

#include "client/table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

using ::testing::HasSubstr;

v1::VersionStatus Version(const std::string& version, v1::VersionState state,
                          uint64_t sessions = 0,
                          const std::string& reason = "") {
  v1::VersionStatus v;
  v.set_version(version);
  v.set_state(state);
  v.set_sessions(sessions);
  v.set_reason(reason);
  return v;
}

TEST(FormatTableTest, AlignsColumnsAndTrimsEmptyTrailingCells) {
  EXPECT_EQ(FormatTable({{"A", "BB", "C"}, {"long", "x", ""}}),
            "A     BB  C\n"
            "long  x\n");
}

TEST(FormatTableTest, PadsByCharactersNotBytes) {
  // "é" is two bytes but one character on a terminal.
  EXPECT_EQ(FormatTable({{"21 \"é\"", "0.5"}, {"2 \"b\"", "0.25"}}),
            "21 \"é\"  0.5\n"
            "2 \"b\"   0.25\n");
}

TEST(FormatRepositoryTest, OneRowPerVersionWithSessionsAndReasons) {
  v1::RepositoryIndexResponse index;
  v1::RepositoryModel* sine = index.add_models();
  sine->set_name("sine");
  *sine->add_versions() = Version("1", v1::VERSION_STATE_DRAINING, 3);
  *sine->add_versions() = Version("2", v1::VERSION_STATE_READY);
  *sine->add_versions() =
      Version("3", v1::VERSION_STATE_FAILED, 0,
              "models/sine/3/model.bin: expected 4096 bytes,\ngot 100");
  v1::RepositoryModel* fashion = index.add_models();
  fashion->set_name("fashion_lstm");
  *fashion->add_versions() = Version("1", v1::VERSION_STATE_LOADING);
  EXPECT_EQ(FormatRepository(index),
            "MODEL         VERSION  STATE     SESSIONS    REASON\n"
            "sine          1        draining  3 sessions\n"
            "sine          2        ready\n"
            "sine          3        failed                models/sine/3/"
            "model.bin: expected 4096 bytes, got 100\n"
            "fashion_lstm  1        loading\n");
}

TEST(FormatRepositoryTest, ADrainingVersionWithOneSession) {
  v1::RepositoryIndexResponse index;
  v1::RepositoryModel* sine = index.add_models();
  sine->set_name("sine");
  *sine->add_versions() = Version("7", v1::VERSION_STATE_DRAINING, 1);
  EXPECT_THAT(FormatRepository(index), HasSubstr("draining  1 session\n"));
}

TEST(FormatRepositoryTest, AModelUnloadedByRequestSaysHowToBringItBack) {
  v1::RepositoryIndexResponse index;
  v1::RepositoryModel* gone = index.add_models();
  gone->set_name("sine");
  gone->set_unloaded_by_request(true);
  v1::RepositoryModel* draining = index.add_models();
  draining->set_name("fashion_lstm");
  draining->set_unloaded_by_request(true);
  *draining->add_versions() = Version("2", v1::VERSION_STATE_DRAINING, 5);
  const std::string table = FormatRepository(index);
  EXPECT_THAT(table, HasSubstr("sine          -        -                     "
                               "unloaded by request; 'rnnctl repository "
                               "load sine' serves it again\n"));
  EXPECT_THAT(table, HasSubstr("fashion_lstm  2        draining  5 sessions  "
                               "unloaded by request; 'rnnctl repository "
                               "load fashion_lstm' serves it again\n"));
}

TEST(FormatRepositoryTest, TheServersReasonWinsOverTheGenericOne) {
  v1::RepositoryIndexResponse index;
  v1::RepositoryModel* sine = index.add_models();
  sine->set_name("sine");
  sine->set_unloaded_by_request(true);
  *sine->add_versions() =
      Version("1", v1::VERSION_STATE_UNLOADED, 0, "UnloadModel");
  EXPECT_EQ(FormatRepository(index),
            "MODEL  VERSION  STATE     SESSIONS  REASON\n"
            "sine   1        unloaded            UnloadModel\n");
}

TEST(FormatRepositoryTest, AnEmptyRepository) {
  EXPECT_EQ(FormatRepository({}), "(no models in the repository)\n");
}

TEST(VersionStatesTest, EachVersionWithItsStateAndDrainingSessions) {
  v1::ModelInfo model;
  model.set_version("2");
  v1::ModelInfo* old = model.add_versions();
  old->set_version("1");
  old->set_state(v1::VERSION_STATE_DRAINING);
  old->set_sessions(3);
  v1::ModelInfo* now = model.add_versions();
  now->set_version("2");
  now->set_state(v1::VERSION_STATE_READY);
  v1::ModelInfo* broken = model.add_versions();
  broken->set_version("3");
  broken->set_state(v1::VERSION_STATE_FAILED);
  EXPECT_EQ(VersionStates(model), "1 draining (3 sessions), 2 ready, 3 failed");
}

TEST(VersionStatesTest, AServerWithoutStatesListsTheNumbers) {
  v1::ModelInfo model;
  model.set_version("2");
  EXPECT_EQ(VersionStates(model), "2");
  model.add_versions()->set_version("1");
  model.add_versions()->set_version("2");
  EXPECT_EQ(VersionStates(model), "1, 2");
}

TEST(ParseRepositoryActionTest, TheThreeSubCommands) {
  auto index = ParseRepositoryAction({"index"});
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->verb, RepositoryAction::Verb::kIndex);
  auto load = ParseRepositoryAction({"load", "sine"});
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_EQ(load->verb, RepositoryAction::Verb::kLoad);
  EXPECT_EQ(load->model, "sine");
  auto unload = ParseRepositoryAction({"unload", "fashion_lstm"});
  ASSERT_TRUE(unload.ok()) << unload.status();
  EXPECT_EQ(unload->verb, RepositoryAction::Verb::kUnload);
  EXPECT_EQ(unload->model, "fashion_lstm");
}

TEST(ParseRepositoryActionTest, BadArgumentsNameWhatWasExpected) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{},
       "missing sub-command: expected 'index', 'load MODEL' or "
       "'unload MODEL'"},
      {{"reload", "sine"}, "unknown sub-command \"reload\""},
      {{"index", "sine"}, "index takes no argument, got sine"},
      {{"load"}, "load: expected one model name"},
      {{"load", ""}, "load: expected one model name"},
      {{"unload", "a", "b"},
       "unload: expected one model name (the model's "
       "folder in the repository), got a b"},
  };
  for (const Case& c : cases) {
    auto action = ParseRepositoryAction(c.args);
    ASSERT_FALSE(action.ok()) << c.message;
    EXPECT_EQ(action.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(action.status().message(), HasSubstr(c.message));
  }
}

TEST(RepositoryCallErrorTest, TellsWhatUnimplementedAndUnauthenticatedMean) {
  const absl::Status off =
      RepositoryCallError(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""),
                          "RepositoryIndex", "admin.token");
  EXPECT_EQ(off.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(off.message(), HasSubstr("RepositoryIndex: the server does not "
                                       "offer the repository service: it has "
                                       "no admin tokens configured"));
  const absl::Status refused = RepositoryCallError(
      grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown token"),
      "LoadModel", "admin.token");
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(refused.message(),
              HasSubstr("LoadModel: the server refused the admin token of "
                        "--admin-token-file \"admin.token\""));
  EXPECT_THAT(refused.message(), HasSubstr("(server: unknown token)"));
  const absl::Status failed =
      RepositoryCallError(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                       "version 3: bad config"),
                          "LoadModel", "admin.token");
  EXPECT_EQ(failed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(failed.message(), "LoadModel: version 3: bad config");
}

}  // namespace
}  // namespace rnnserve::client
