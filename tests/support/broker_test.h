// Test support: the fixture of the integration tests, a fresh work directory per test and a
// mosquitto broker of its own (GoogleTest only).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "support/process.h"

namespace outpost::test_support {

// <tmp>/<prefix>_<pid>_<name of the running test>, emptied and created.
inline std::filesystem::path fresh_test_dir(const std::string& prefix) {
  const auto dir = std::filesystem::temp_directory_path() /
                   (prefix + "_" + std::to_string(::getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// SetUp: dir_ and a started broker_ (its log in dir_/broker). TearDown: the broker stops and
// dir_ is removed unless the test failed (kept for whoever investigates). A fixture that
// starts processes of its own stops them in its TearDown before calling this one's.
class BrokerTest : public ::testing::Test {
 protected:
  explicit BrokerTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    dir_ = fresh_test_dir(prefix_);
    broker_ = std::make_unique<Mosquitto>(dir_ / "broker");
    broker_->start();
  }
  void TearDown() override {
    broker_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Mosquitto> broker_;

 private:
  std::string prefix_;
};

}  // namespace outpost::test_support
