#pragma once
// Test hook of the checkpoint writer and reader (Note [Staging device data] in
// io/checkpoint_stage.h). Not for production code.
#include <cstdint>

namespace loom::detail {

// Stage checkpoint data through the host staging buffer in pieces of `chunk_bytes` (any
// size >= 1), host data included when `stage_host` is true, so the device path runs on a
// machine without a GPU. chunk_bytes == 0 restores the defaults (64 MiB, host data in
// place). Takes effect for saves that start and readers opened after the call, in this process
// only (staging is local: the file and its checksums do not change).
void set_checkpoint_staging(uint64_t chunk_bytes, bool stage_host);

}  // namespace loom::detail
