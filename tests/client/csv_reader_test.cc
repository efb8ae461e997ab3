#include "client/csv_reader.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(CsvReaderTest, ReadsSequencesSkippingCommentsAndBlankLines) {
  const std::string path =
      WriteFile("plain.csv", "# a comment\n0.5, 1,-2.25\r\n\n1e-3,4\n  \n");
  auto rows = ReadCsvSequences(path, false);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].line, 2);
  EXPECT_EQ((*rows)[0].values, (std::vector<float>{0.5f, 1.0f, -2.25f}));
  EXPECT_EQ((*rows)[1].line, 4);
  EXPECT_EQ((*rows)[1].values, (std::vector<float>{1e-3f, 4.0f}));
  EXPECT_TRUE((*rows)[0].label.empty());
}

TEST(CsvReaderTest, TakesTheFirstColumnAsLabel) {
  const std::string path =
      WriteFile("labelled.csv", "Ankle boot,0,1\n3, 2 ,3\n");
  auto rows = ReadCsvSequences(path, true);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].label, "Ankle boot");
  EXPECT_EQ((*rows)[0].values, (std::vector<float>{0, 1}));
  EXPECT_EQ((*rows)[1].label, "3");
}

TEST(CsvReaderTest, NamesTheLineAndColumnOfABadValue) {
  const std::string path = WriteFile("bad.csv", "1,2\n3,x,4\n");
  auto rows = ReadCsvSequences(path, false);
  ASSERT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rows.status().message().find("line 2 column 2"),
            absl::string_view::npos)
      << rows.status();
  for (const char* text : {"1,nan\n", "1,inf\n", "1,1e99\n", "1,,2\n"}) {
    EXPECT_FALSE(ReadCsvSequences(WriteFile("bad2.csv", text), false).ok())
        << text;
  }
  EXPECT_FALSE(ReadCsvSequences(WriteFile("nolabel.csv", "7\n"), true).ok());
  EXPECT_EQ(ReadCsvSequences("/nonexistent.csv", false).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace rnnserve::client
