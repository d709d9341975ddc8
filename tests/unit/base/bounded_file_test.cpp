// Files named by the config are read whole, but only regular files and only up to a bound.

#include "base/bounded_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace turnout::base {
namespace {

class BoundedFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("turnout-bounded-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string write(const std::string& name, const std::string& text) {
        const auto path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }

    std::filesystem::path dir_;
};

TEST_F(BoundedFileTest, ReadsARegularFileWhole) {
    const std::string body(20000, 'x');  // more than one read buffer
    std::string text, reason;
    ASSERT_TRUE(base::read_bounded_file(write("a.yaml", body), 1 << 20, text, reason)) << reason;
    EXPECT_EQ(text, body);
}

TEST_F(BoundedFileTest, RefusesAFileOverTheBound) {
    std::string text, reason;
    const auto path = write("big.yaml", std::string(1025, 'x'));
    EXPECT_FALSE(base::read_bounded_file(path, 1024, text, reason));
    EXPECT_NE(reason.find("larger than 1024 bytes"), std::string::npos) << reason;
    EXPECT_TRUE(text.empty());
    EXPECT_TRUE(base::read_bounded_file(path, 1025, text, reason)) << reason;
}

TEST_F(BoundedFileTest, RefusesDevZeroWithoutReadingIt) {
    std::string text, reason;
    EXPECT_FALSE(base::read_bounded_file("/dev/zero", base::kMaxConfigFileBytes, text, reason));
    EXPECT_EQ(reason, "not a regular file");
    EXPECT_TRUE(text.empty());
}

TEST_F(BoundedFileTest, RefusesAFifoWithoutBlocking) {
    const auto path = (dir_ / "fifo").string();
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    std::string text, reason;
    // Would block forever in open(2) or read(2) without O_NONBLOCK and the type check.
    EXPECT_FALSE(base::read_bounded_file(path, base::kMaxConfigFileBytes, text, reason));
    EXPECT_EQ(reason, "not a regular file");
}

TEST_F(BoundedFileTest, RefusesADirectoryAndAMissingFile) {
    std::string text, reason;
    EXPECT_FALSE(base::read_bounded_file(dir_.string(), base::kMaxConfigFileBytes, text, reason));
    EXPECT_EQ(reason, "is a directory");
    EXPECT_FALSE(
        base::read_bounded_file((dir_ / "none").string(), base::kMaxConfigFileBytes, text, reason));
    EXPECT_FALSE(reason.empty());
}

}  // namespace
}  // namespace turnout::base
