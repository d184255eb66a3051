// launcher_world_size(): which environment variables announce a world, and which do not.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "dist/mpi_communicator.h"

namespace loom {
namespace {

// Clears every variable launcher_world_size() reads, restoring them afterwards.
class LauncherEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kNames) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::string(v) : std::string("\x01"));
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (auto& [name, value] : saved_) {
      if (value == "\x01") unsetenv(name.c_str());
      else setenv(name.c_str(), value.c_str(), 1);
    }
  }
  static constexpr const char* kNames[] = {"OMPI_COMM_WORLD_SIZE", "SLURM_STEP_ID", "SLURM_PROCID",
                                           "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "PMI_SIZE",
                                           "PMIX_SIZE", "PMI_RANK", "PMIX_RANK", "RANK", "WORLD_SIZE",
                                           "LOCAL_RANK", "MASTER_ADDR"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(LauncherEnv, NothingSetMeansNoLauncher) { EXPECT_EQ(launcher_world_size(), 0); }

TEST_F(LauncherEnv, OpenMpiWins) {
  setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
  setenv("PMI_SIZE", "5", 1);
  EXPECT_EQ(launcher_world_size(), 3);
}

TEST_F(LauncherEnv, SlurmCountsOnlyInsideAStep) {
  setenv("SLURM_STEP_NUM_TASKS", "4", 1);
  setenv("SLURM_NTASKS", "4", 1);
  EXPECT_EQ(launcher_world_size(), 0);  // an sbatch script is one process
  setenv("SLURM_STEP_ID", "0", 1);
  setenv("SLURM_PROCID", "2", 1);
  EXPECT_EQ(launcher_world_size(), 4);
}

TEST_F(LauncherEnv, PmiSizesAndGarbage) {
  setenv("PMIX_SIZE", "6", 1);
  EXPECT_EQ(launcher_world_size(), 6);
  setenv("PMI_SIZE", "2", 1);
  EXPECT_EQ(launcher_world_size(), 2);
  setenv("PMI_SIZE", "two", 1);
  EXPECT_EQ(launcher_world_size(), 6);
}

// Note [torchrun]: RANK and WORLD_SIZE > 1 alone are torchrun's world, named in the
// refusal; under an MPI launcher (or at WORLD_SIZE 1) they are ignored.
TEST_F(LauncherEnv, TorchrunIsNamed) {
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "4", 1);
  setenv("LOCAL_RANK", "1", 1);
  EXPECT_EQ(torchrun_world_size(), 4);
  EXPECT_EQ(launcher_world_size(), 4);
  const std::string why = torchrun_problem();
  EXPECT_NE(why.find("torchrun"), std::string::npos) << why;
  EXPECT_NE(why.find("RANK=1 WORLD_SIZE=4 LOCAL_RANK=1"), std::string::npos) << why;
  EXPECT_NE(why.find("mpirun -np 4 loom"), std::string::npos) << why;
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);   // mpirun around a shell that exported them
  EXPECT_EQ(torchrun_world_size(), 0);
  EXPECT_EQ(torchrun_problem(), "");
  EXPECT_EQ(launcher_world_size(), 2);
  unsetenv("OMPI_COMM_WORLD_SIZE");
  setenv("WORLD_SIZE", "1", 1);
  EXPECT_EQ(torchrun_world_size(), 0);
  unsetenv("RANK");
  setenv("WORLD_SIZE", "4", 1);
  EXPECT_EQ(torchrun_world_size(), 0);   // WORLD_SIZE alone is too common a name to refuse on
}

}  // namespace
}  // namespace loom
