#include "client/idx_reader.h"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

// An idx file of unsigned bytes: magic, big-endian dimensions, data.
std::string IdxBytes(const std::vector<uint32_t>& dims,
                     const std::vector<uint8_t>& data) {
  std::string bytes = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      bytes += static_cast<char>((d >> shift) & 0xff);
    }
  }
  bytes.append(data.begin(), data.end());
  return bytes;
}

class IdxReaderTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& bytes,
                    bool gzip) {
    const std::string path =
        (std::filesystem::path(::testing::TempDir()) / name).string();
    if (gzip) {
      gzFile file = gzopen(path.c_str(), "wb");
      gzwrite(file, bytes.data(), bytes.size());
      gzclose(file);
    } else {
      std::FILE* file = std::fopen(path.c_str(), "wb");
      std::fwrite(bytes.data(), 1, bytes.size(), file);
      std::fclose(file);
    }
    return path;
  }
};

TEST_F(IdxReaderTest, ReadsARangeOfItemsCompressedOrNot) {
  std::vector<uint8_t> data(5 * 2 * 3);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  for (bool gzip : {true, false}) {
    const std::string path =
        Write(gzip ? "a.idx.gz" : "a.idx", IdxBytes({5, 2, 3}, data), gzip);
    auto array = ReadIdx(path, 1, 3);
    ASSERT_TRUE(array.ok()) << array.status();
    EXPECT_EQ(array->total_items, 5);
    EXPECT_EQ(array->first_item, 1);
    EXPECT_EQ(array->items, 3);
    EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(array->item_size(), 6);
    ASSERT_EQ(array->data.size(), 18u);
    EXPECT_EQ(array->item(0)[0], 6);
    EXPECT_EQ(array->item(2)[5], 23);
  }
}

TEST_F(IdxReaderTest, ClipsTheCountAndReadsToTheEnd) {
  const std::string path =
      Write("labels.gz", IdxBytes({4}, {9, 8, 7, 6}), true);
  auto tail = ReadIdx(path, 2, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->items, 2);
  EXPECT_EQ(tail->data, (std::vector<uint8_t>{7, 6}));
  auto all = ReadIdx(path, 0, -1);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items, 4);
}

TEST_F(IdxReaderTest, RefusesBadFiles) {
  EXPECT_EQ(ReadIdx("/nonexistent/x.gz", 0, 1).status().code(),
            absl::StatusCode::kNotFound);
  const std::string offset_past_end =
      Write("short.gz", IdxBytes({2}, {1, 2}), true);
  EXPECT_EQ(ReadIdx(offset_past_end, 2, 1).status().code(),
            absl::StatusCode::kOutOfRange);
  std::string truncated = IdxBytes({3, 2}, {1, 2, 3, 4});
  EXPECT_EQ(ReadIdx(Write("trunc.gz", truncated, true), 0, 3).status().code(),
            absl::StatusCode::kDataLoss);
  std::string floats = IdxBytes({1}, {0, 0, 0, 0});
  floats[2] = 0x0d;
  EXPECT_EQ(ReadIdx(Write("float.gz", floats, true), 0, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadIdx(Write("text", "hello world", false), 0, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Debian's dataset-fashion-mnist, which tools/setup.sh installs and CI has.
// Missing, it fails the test; it is skipped only when the environment
// variable RNNSERVE_ALLOW_MISSING_DATASETS=1 says so explicitly.
TEST(FashionMnistTest, ReadsDebiansTestSet) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (!std::filesystem::exists(dir + "t10k-images-idx3-ubyte.gz")) {
    const char* allow = std::getenv("RNNSERVE_ALLOW_MISSING_DATASETS");
    if (allow != nullptr && std::string(allow) == "1") {
      GTEST_SKIP() << "dataset-fashion-mnist is not installed, and "
                      "RNNSERVE_ALLOW_MISSING_DATASETS=1";
    }
    FAIL() << dir << "t10k-images-idx3-ubyte.gz is missing: install the "
           << "package dataset-fashion-mnist (tools/setup.sh does), or set "
           << "RNNSERVE_ALLOW_MISSING_DATASETS=1 to skip this test";
  }
  auto images = ReadIdx(dir + "t10k-images-idx3-ubyte.gz", 9990, 100);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(images->total_items, 10000);
  EXPECT_EQ(images->items, 10);
  EXPECT_EQ(images->shape, (std::vector<int64_t>{28, 28}));
  auto labels = ReadIdx(dir + "t10k-labels-idx1-ubyte.gz", 0, 10);
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_TRUE(labels->shape.empty());
  // The first test labels: ankle boot, pullover, trouser, trouser, shirt.
  EXPECT_EQ(labels->data[0], 9);
  EXPECT_EQ(labels->data[1], 2);
  EXPECT_EQ(labels->data[2], 1);
  EXPECT_EQ(labels->data[3], 1);
  EXPECT_EQ(labels->data[4], 6);
}

}  // namespace
}  // namespace rnnserve::client
