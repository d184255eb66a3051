#pragma once
// run.device and train.precision: where a model kind trains and what its GPU matmuls
// compute in (Note [CUDA matmul precision] in core/kernels.h).
//
// Note [Training on a GPU]
// With run.device = "cuda" each rank drives one GPU, picked from its local rank
// (dist/gpu_select.h; two ranks on one GPU are refused on every rank of the node). The
// model builds its ParamStore, activations and optimizer state on that GPU, copies each
// micro-batch's ids there, runs forward, backward and the optimizer there, and the
// Trainer's device communicator (comm_for: NCCL) reduces its gradient buckets. Nothing in
// the model math changes: the kernels pick their CUDA implementations from the tensors'
// device. Checkpoints hold float32 host data whatever the device (the checkpoint writer
// stages device data through pinned host memory, Note [Staging device data] in
// io/checkpoint_stage.h), so a GPU run resumes on the CPU and a CPU run on a GPU.
// Refused, naming the key: cuda in a build without CUDA, cuda on a rank that sees no GPU,
// cuda for a kind that trains on the CPU only (glove, word2vec), and a precision other
// than fp32 on the CPU.
#include <string_view>

#include "core/device.h"
#include "core/kernels.h"

namespace loom {

struct Config;
class MpiCommunicator;

// train.precision as the kernels' setting; a ConfigError naming the key for anything else.
CudaMatmul matmul_precision_of(std::string_view precision);

// For a kind that can train on a GPU: the device this rank trains on (Device::cpu() for
// run.device = "cpu"), with the CUDA matmul precision set from train.precision. Collective
// over `world` when run.device = "cuda" (every rank calls it). Throws ConfigError (or the
// Error of gpu_for_this_rank, naming the rank, host and CUDA_VISIBLE_DEVICES) as the Note
// says.
Device train_device(const Config& config, MpiCommunicator& world, std::string_view kind);

// For a kind that trains on the CPU only: ConfigError naming run.device or train.precision
// when they ask for a GPU.
void require_cpu_training(const Config& config, std::string_view kind);

}  // namespace loom
