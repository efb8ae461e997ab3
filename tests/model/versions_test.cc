// Numbered version folders and the version policy, on real folders.
#include "server/model/versions.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/model/config.h"
#include "server/model/loader.h"
#include "tests/model/test_util.h"

namespace rnnserve::model {
namespace {

namespace fs = std::filesystem;
using testing::BuildSafetensors;
using testing::ConfigJson;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class VersionsTest : public ::testing::Test {
 protected:
  // A valid model folder at `dir` whose config says version `version`.
  void WriteVersion(const fs::path& dir, const std::string& version,
                    ConfigJson config = ConfigJson()) {
    config.Set("version", "\"" + version + "\"");
    absl::StatusOr<ModelConfig> parsed =
        ParseModelConfig(config.Build(), "test");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    testing::WriteModelFolder(dir, config.Build(),
                              BuildSafetensors(testing::ModelTensors(*parsed)));
  }

  // Model `name` with version folders `versions` in the repository.
  void WriteVersions(const std::string& name,
                     const std::vector<std::string>& versions) {
    for (const std::string& v : versions) WriteVersion(model(name) / v, v);
  }

  fs::path model(const std::string& name) { return temp_.path() / name; }

  static std::vector<std::string> Versions(const std::vector<Model>& models) {
    std::vector<std::string> out;
    for (const Model& m : models) out.push_back(m.config.version);
    return out;
  }

  absl::StatusOr<std::vector<Model>> Load(const std::string& name) {
    return LoadModelVersions(model(name));
  }

  testing::TempFolder temp_;
};

TEST(VersionNumberTest, DigitsWithoutLeadingZero) {
  EXPECT_EQ(VersionNumber("0"), 0);
  EXPECT_EQ(VersionNumber("7"), 7);
  EXPECT_EQ(VersionNumber("123456789012345678"), 123456789012345678);
  EXPECT_EQ(VersionNumber("07"), std::nullopt);
  EXPECT_EQ(VersionNumber(""), std::nullopt);
  EXPECT_EQ(VersionNumber("-1"), std::nullopt);
  EXPECT_EQ(VersionNumber("1a"), std::nullopt);
  EXPECT_EQ(VersionNumber("1234567890123456789"), std::nullopt);
}

TEST_F(VersionsTest, AFlatFolderIsOneVersionNamedByItsConfig) {
  WriteVersion(model("flat"), "v1.2-beta");
  absl::StatusOr<std::vector<Model>> models = Load("flat");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Versions(*models), ElementsAre("v1.2-beta"));
  EXPECT_EQ((*models)[0].config.name, "flat");
}

TEST_F(VersionsTest, WithoutPolicyOnlyTheNewestNumberIsLoaded) {
  // 10 > 9 > 2: numbers, not strings, are compared.
  WriteVersions("m", {"2", "9", "10"});
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Versions(*models), ElementsAre("10"));
  EXPECT_EQ((*models)[0].config.name, "m");
}

TEST_F(VersionsTest, LatestNLoadsTheNHighestOldestFirst) {
  WriteVersions("m", {"1", "3", "10", "2"});
  testing::WriteFile(model("m") / "model.json",
                     R"({"version_policy": {"latest": {"num_versions": 2}}})");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Versions(*models), ElementsAre("3", "10"));
}

TEST_F(VersionsTest, LatestNBeyondWhatIsPresentLoadsAll) {
  WriteVersions("m", {"1", "2"});
  testing::WriteFile(model("m") / "model.json",
                     R"({"version_policy": {"latest": {"num_versions": 5}}})");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Versions(*models), ElementsAre("1", "2"));
}

TEST_F(VersionsTest, SpecificLoadsExactlyThose) {
  WriteVersions("m", {"1", "2", "3"});
  testing::WriteFile(
      model("m") / "model.json",
      R"({"version_policy": {"specific": {"versions": [3, 1]}}})");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Versions(*models), ElementsAre("1", "3"));
}

TEST_F(VersionsTest, AllLoadsEveryVersion) {
  WriteVersions("m", {"4", "1", "2"});
  testing::WriteFile(model("m") / "model.json",
                     R"({"version_policy": {"all": {}}})");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Versions(*models), ElementsAre("1", "2", "4"));
}

TEST_F(VersionsTest, AVersionNotSelectedIsNotEvenRead) {
  WriteVersions("m", {"2"});
  testing::WriteFile(model("m") / "1" / "config.json", "not json");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Versions(*models), ElementsAre("2"));
}

TEST_F(VersionsTest, ListingReadsNoConfigNorWeights) {
  testing::WriteFile(model("m") / "1" / "config.json", "not json");
  testing::WriteFile(model("m") / "2" / "config.json", "not json either");
  testing::WriteFile(model("m") / "model.json",
                     R"({"version_policy": {"all": {}}})");
  absl::StatusOr<std::vector<VersionSource>> sources =
      ListModelVersions(model("m"));
  ASSERT_TRUE(sources.ok()) << sources.status();
  ASSERT_EQ(sources->size(), 2u);
  EXPECT_EQ((*sources)[0].folder_version, "1");
  EXPECT_EQ((*sources)[1].dir, model("m") / "2");
  // Loading one is what reads it.
  EXPECT_THAT(LoadVersionSource((*sources)[1], "m").status().message(),
              HasSubstr("config.json"));
}

TEST_F(VersionsTest, AFlatFolderIsListedWithoutAVersionName) {
  WriteVersion(model("m"), "7");
  absl::StatusOr<std::vector<VersionSource>> sources =
      ListModelVersions(model("m"));
  ASSERT_TRUE(sources.ok()) << sources.status();
  ASSERT_EQ(sources->size(), 1u);
  EXPECT_EQ((*sources)[0].folder_version, "");
  absl::StatusOr<Model> loaded = LoadVersionSource((*sources)[0], "m");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.version, "7");
}

TEST(FolderFingerprintTest, ChangesWithTheFilesAndOnlyWithThem) {
  testing::TempFolder temp;
  const fs::path dir = temp.path() / "1";
  testing::WriteFile(dir / "config.json", "{}");
  testing::WriteFile(dir / "weights.safetensors", "0123456789");
  const std::string before = FolderFingerprint(dir);
  EXPECT_FALSE(before.empty());
  EXPECT_EQ(FolderFingerprint(dir), before);
  // A file cut short (as by a copy still running) is a change.
  testing::WriteFile(dir / "weights.safetensors", "01234");
  const std::string cut = FolderFingerprint(dir);
  EXPECT_NE(cut, before);
  testing::WriteFile(dir / "extra.bin", "x");
  EXPECT_NE(FolderFingerprint(dir), cut);
  EXPECT_EQ(FolderFingerprint(temp.path() / "missing"), "");
}

TEST_F(VersionsTest, AMissingSpecificVersionIsNamed) {
  WriteVersions("m", {"1", "2"});
  testing::WriteFile(
      model("m") / "model.json",
      R"({"version_policy": {"specific": {"versions": [2, 5]}}})");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(models.status().message(),
              HasSubstr((model("m") / "model.json").string() +
                        ": \"version_policy.specific.versions\" names version "
                        "5, but there is no version folder \"5\""));
}

TEST_F(VersionsTest, AConfigWhoseVersionIsNotItsFoldersIsRefused) {
  WriteVersion(model("m") / "2", "1");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(models.status().message(),
              HasSubstr((model("m") / "2" / "config.json").string() +
                        ": \"version\" must be \"2\", the name of its version "
                        "folder, got \"1\""));
}

TEST_F(VersionsTest, ABadVersionFolderFailsWithItsMessage) {
  WriteVersions("m", {"1"});
  WriteVersion(model("m") / "2", "2");
  testing::WriteFile(
      model("m") / "2" / "config.json",
      ConfigJson().Set("version", "\"2\"").Set("cell", "\"lstn\"").Build());
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_THAT(models.status().message(),
              HasSubstr((model("m") / "2" / "config.json").string() +
                        ": \"cell\" must be one of"));
}

TEST_F(VersionsTest, ANonNumericSubfolderIsRefused) {
  WriteVersions("m", {"1"});
  fs::create_directories(model("m") / "v2");
  fs::create_directories(model("m") / ".git");            // Skipped.
  testing::WriteFile(model("m") / "README.md", "notes");  // Skipped.
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_THAT(models.status().message(),
              HasSubstr((model("m") / "v2").string() +
                        ": a version folder's name must be a version number"));
}

TEST_F(VersionsTest, ALeadingZeroIsRefused) {
  WriteVersion(model("m") / "01", "01");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_THAT(models.status().message(), HasSubstr("no leading zero"));
}

TEST_F(VersionsTest, ConfigBesideVersionFoldersIsRefused) {
  WriteVersion(model("m"), "1");
  WriteVersion(model("m") / "2", "2");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_THAT(models.status().message(),
              HasSubstr(model("m").string() +
                        ": holds both config.json and the folder \"2\""));
}

TEST_F(VersionsTest, APolicyBesideAFlatModelIsRefused) {
  WriteVersion(model("m"), "1");
  testing::WriteFile(model("m") / "model.json", "{}");
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_THAT(models.status().message(),
              HasSubstr((model("m") / "model.json").string() +
                        ": a version policy needs numbered version folders"));
}

TEST_F(VersionsTest, AnEmptyModelFolderIsNotFound) {
  fs::create_directories(model("m"));
  absl::StatusOr<std::vector<Model>> models = Load("m");
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(models.status().message(),
              HasSubstr("neither config.json nor a numbered version folder"));
}

TEST(VersionPolicyTest, DefaultIsLatestOne) {
  absl::StatusOr<VersionPolicy> p = ParseVersionPolicy("{}", "m/model.json");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(p->num_versions, 1);
}

TEST(VersionPolicyTest, BadPoliciesNameFileAndKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[]", "m/model.json: must be a JSON object"},
      {R"({"policy": {}})", "m/model.json: unknown key \"policy\""},
      {R"({"version_policy": 1})",
       "m/model.json: \"version_policy\" must be an object"},
      {R"({"version_policy": {}})",
       "\"version_policy\" must hold exactly one of"},
      {R"({"version_policy": {"latest": {}, "all": {}}})",
       "\"version_policy\" must hold exactly one of"},
      {R"({"version_policy": {"newest": {}}})",
       "\"version_policy\" has unknown key \"newest\""},
      {R"({"version_policy": {"latest": {"num_versions": 0}}})",
       "\"version_policy.latest.num_versions\" must be an integer from 1 to "
       "1000, got 0"},
      {R"({"version_policy": {"latest": {"n": 2}}})",
       "\"version_policy.latest\" has unknown key \"n\""},
      {R"({"version_policy": {"specific": {}}})",
       "\"version_policy.specific.versions\" is required"},
      {R"({"version_policy": {"specific": {"versions": []}}})",
       "\"version_policy.specific.versions\" must be a non-empty array"},
      {R"({"version_policy": {"specific": {"versions": ["1"]}}})",
       "\"version_policy.specific.versions\" must hold version numbers"},
      {R"({"version_policy": {"specific": {"versions": [-1]}}})",
       "\"version_policy.specific.versions\" must hold version numbers"},
      {R"({"version_policy": {"specific": {"versions": [1, 1]}}})",
       "\"version_policy.specific.versions\" names a version twice"},
      {R"({"version_policy": {"all": {"x": 1}}})",
       "\"version_policy.all\" has unknown key \"x\""},
  };
  for (const auto& [json, message] : cases) {
    absl::StatusOr<VersionPolicy> p = ParseVersionPolicy(json, "m/model.json");
    ASSERT_FALSE(p.ok()) << json;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(p.status().message(), HasSubstr(message)) << json;
  }
}

TEST_F(VersionsTest, TheRepositoryListsEachModelsVersionsOldestFirst) {
  WriteVersions("b", {"1", "2"});
  testing::WriteFile(model("b") / "model.json",
                     R"({"version_policy": {"all": {}}})");
  WriteVersion(model("a"), "x");
  absl::StatusOr<std::vector<Model>> models = LoadModelRepository(temp_.path());
  ASSERT_TRUE(models.ok()) << models.status();
  std::vector<std::string> names;
  for (const Model& m : *models) {
    names.push_back(m.config.name + ":" + m.config.version);
  }
  EXPECT_THAT(names, ElementsAre("a:x", "b:1", "b:2"));
}

}  // namespace
}  // namespace rnnserve::model
