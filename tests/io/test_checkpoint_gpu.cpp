// Checkpoints of parameters and optimizer slots that live on a GPU (label gpu): saved
// through the host staging buffer, the file holds the same data and checksums as a save
// of the same values from host memory, and it loads into host and device parameters
// alike. Skips, saying why, where no CUDA device is visible; the staging path itself is
// covered on the CPU by test_checkpoint_staging.
#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "core/buffer.h"
#include "core/device.h"
#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "tests/io/shared_dir.h"
#include "tests/io/staging_fixture.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

std::vector<float> to_host(const Tensor& t) {
  std::vector<float> host(static_cast<size_t>(t.numel()));
  copy_bytes(host.data(), Device::cpu(), t.data(), t.device(), t.nbytes());
  return host;
}

void expect_params_equal(const ParamStore& got, const test::OddCheckpoint& want, const char* where) {
  for (int i = 0; i < want.params.size(); ++i) {
    const std::vector<float> g = to_host(got.value(i));
    const float* w = want.params.value(i).f32();
    for (size_t k = 0; k < g.size(); ++k)
      ASSERT_EQ(g[k], w[k]) << where << ": parameter " << want.params.entry(i).name << " index " << k << " on "
                            << got.device().str();
  }
}

// The host checkpoint's values, copied to `gpu`: parameters and one "m" slot each.
struct DeviceCopy {
  ParamStore params;
  std::vector<Buffer> slot_buffers;
  SaveRequest req;

  DeviceCopy(const test::OddCheckpoint& host, Device gpu) {
    test::OddCheckpoint::declare(params);
    params.finalize(gpu);
    const Tensor from = host.params.values(), to = params.values();
    copy_bytes(to.data(), gpu, from.data(), Device::cpu(), from.nbytes());
    req = host.req;
    req.params = &params;
    req.slots.clear();
    for (const auto& s : host.req.slots) {
      Buffer& b = slot_buffers.emplace_back(s.value.nbytes(), gpu);
      copy_bytes(b.data(), gpu, s.value.data(), Device::cpu(), s.value.nbytes());
      req.slots.push_back({s.param, s.slot, Tensor(b.data(), s.value.shape(), DType::kF32, gpu)});
    }
  }
};

// (staging chunk: 0 for the default 64 MiB, else a small odd size; write mode)
class CheckpointGpu : public ::testing::TestWithParam<std::tuple<uint64_t, WriteMode>> {};

TEST_P(CheckpointGpu, DeviceParametersSaveAndLoadLikeHostOnes) {
  if (!cuda_available())
    LOOM_SKIP_NO_GPU("no CUDA device visible to this process (cuda_device_count() == 0, CUDA runtime " +
                     cuda_runtime_version() + "): GPU checkpoints are not exercised here");
  const auto [chunk, mode] = GetParam();
  Communicator& comm = MpiCommunicator::world();
  const Device gpu = Device::cuda(comm.rank() % cuda_device_count());
  test::SharedDir dir(comm);
  test::OddCheckpoint host(comm.rank());
  DeviceCopy device(host, gpu);

  test::ForcedStaging staging(chunk, /*stage_host=*/false);   // device data only; 0: defaults
  const std::string from_host = save_checkpoint(comm, dir.path(), "host", host.req, mode);
  const std::string from_device = save_checkpoint(comm, dir.path(), "device", device.req, mode);
  test::expect_same_data(from_host, from_device);
  test::expect_checksums_of(from_device, host);

  CheckpointReader r;
  r.open(from_device);
  ParamStore on_host;
  test::OddCheckpoint::declare(on_host);
  on_host.finalize();
  r.read_model_into(on_host);
  expect_params_equal(on_host, host, "device checkpoint into host parameters");

  DeviceCopy back(host, gpu);
  Tensor all = back.params.values();   // zeroed before each load, so a piece not copied shows
  std::vector<float> zeros(static_cast<size_t>(all.numel()), 0.0f);
  copy_bytes(all.data(), gpu, zeros.data(), Device::cpu(), all.nbytes());
  r.read_model_into(back.params);
  expect_params_equal(back.params, host, "device checkpoint into device parameters");
  for (size_t s = 0; s < back.req.slots.size(); ++s) {
    const OptimizerSlot& slot = back.req.slots[s];
    std::vector<float> zero_slot(static_cast<size_t>(slot.value.numel()), 0.0f);
    copy_bytes(slot.value.data(), gpu, zero_slot.data(), Device::cpu(), slot.value.nbytes());
    r.read_slot(slot.param, slot.slot, slot.value);
    const std::vector<float> got = to_host(slot.value);
    for (size_t k = 0; k < got.size(); ++k)
      ASSERT_EQ(got[k], host.slot_data[s][k]) << "slot " << slot.param << "/" << slot.slot << " index " << k;
  }

  CheckpointReader h;
  h.open(from_host);
  copy_bytes(all.data(), gpu, zeros.data(), Device::cpu(), all.nbytes());
  h.read_model_into(back.params);
  expect_params_equal(back.params, host, "host checkpoint into device parameters");
  comm.barrier();
}

INSTANTIATE_TEST_SUITE_P(Staging, CheckpointGpu,
                         ::testing::Combine(::testing::Values(uint64_t{0}, uint64_t{4099}),
                                            ::testing::Values(WriteMode::kGathered, WriteMode::kParallel)),
                         [](const auto& p) {
                           const uint64_t chunk = std::get<0>(p.param);
                           return (chunk == 0 ? std::string("default") : "chunk" + std::to_string(chunk)) + "_" +
                                  write_mode_name(std::get<1>(p.param));
                         });

}  // namespace
}  // namespace loom
