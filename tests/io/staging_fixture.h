#pragma once
// For the staging tests (Note [Staging device data] in io/checkpoint_stage.h): a checkpoint
// whose arrays are no multiple of any staging chunk the tests use, a guard that forces
// staging, and comparisons of two checkpoint files' datasets and data bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "io/checkpoint.h"
#include "io/checkpoint_testing.h"
#include "io/checksum.h"
#include "io/h5.h"

namespace loom::test {

// Parameters (host memory; replicated, so rank-independent) of 1628, 20, 516 (one row)
// and 12012 bytes, an "m" slot per parameter, a per-rank state of 3 words and a vocab.
struct OddCheckpoint {
  static constexpr const char* kNames[] = {"W", "h.0.mlp.c_fc.bias", "row", "big"};
  ParamStore params;
  std::vector<std::vector<float>> slot_data;   // one per parameter
  std::vector<std::string> tokens{"a", "bb", "ccc"};
  std::vector<int64_t> counts{3, 2, 1};
  SaveRequest req;

  static void declare(ParamStore& p) {
    p.declare(kNames[0], {37, 11});
    p.declare(kNames[1], {5});
    p.declare(kNames[2], {1, 129});
    p.declare(kNames[3], {3, 1001});
  }

  explicit OddCheckpoint(int rank) {
    declare(params);
    params.finalize();
    for (int i = 0; i < params.size(); ++i) {
      float* v = params.value(i).f32();
      for (int64_t k = 0; k < params.value(i).numel(); ++k)
        v[k] = static_cast<float>(std::sin(0.61 * static_cast<double>(k) + 3.0 * i) * 7.0);
      auto& m = slot_data.emplace_back(static_cast<size_t>(params.value(i).numel()));
      for (size_t k = 0; k < m.size(); ++k) m[k] = static_cast<float>(k) * 0.25f - static_cast<float>(i);
    }
    for (int i = 0; i < params.size(); ++i)
      req.slots.push_back({params.entry(i).name, "m", Tensor(slot_data[static_cast<size_t>(i)].data(),
                                                             params.value(i).shape(), DType::kF32)});
    const auto r = static_cast<uint64_t>(rank);
    req.state.push_back({"rng", {r * 10 + 1, r * 10 + 2, ~r}});
    req.meta.model_kind = "glove";
    req.meta.step = 11;
    req.meta.config_toml = "[model]\nkind = \"glove\"\n";
    req.meta.created_utc = "2024-01-02T03:04:05Z";
    req.params = &params;
    req.vocab = VocabView{&tokens, &counts};
  }
};

// Forces staging in pieces of `chunk` bytes (host data too unless told otherwise) for its
// lifetime, and restores the defaults even when a test fails.
class ForcedStaging {
 public:
  explicit ForcedStaging(uint64_t chunk, bool stage_host = true) { detail::set_checkpoint_staging(chunk, stage_host); }
  ~ForcedStaging() { detail::set_checkpoint_staging(0, false); }
  ForcedStaging(const ForcedStaging&) = delete;
  ForcedStaging& operator=(const ForcedStaging&) = delete;
};

// The dataset at "/model/W" or "/optimizer/W/m" of an open file.
inline h5::Dataset open_dataset_at(const h5::File& f, const std::string& path) {
  const size_t a = path.find('/', 1), b = path.find('/', a + 1);
  if (b == std::string::npos) return f.open_group(path.substr(1, a - 1)).open_dataset(path.substr(a + 1));
  return f.open_group(path.substr(1, a - 1)).open_group(path.substr(a + 1, b - a - 1)).open_dataset(path.substr(b + 1));
}

// The bytes a numeric dataset's data occupies in the file (contiguous layout).
inline std::string data_bytes(const std::string& file, const std::string& path) {
  h5::File f = h5::File::open(file, false);
  h5::Dataset d = open_dataset_at(f, path);
  const auto offset = d.file_offset();
  if (!offset) return "";
  std::string bytes(static_cast<size_t>(d.storage_bytes()), '\0');
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(*offset));
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return in ? bytes : "unreadable";
}

// Two checkpoints list the same datasets with the same shapes and checksums, and every
// numeric dataset's data is the same bytes in both files. (The files as a whole differ:
// HDF5 stamps object headers with their creation time.)
inline void expect_same_data(const std::string& a, const std::string& b) {
  CheckpointReader ra, rb;
  ra.open(a);
  rb.open(b);
  const auto& da = ra.list_datasets();
  const auto& db = rb.list_datasets();
  ASSERT_EQ(da.size(), db.size()) << a << " vs " << b;
  for (size_t i = 0; i < da.size(); ++i) {
    ASSERT_EQ(da[i].path, db[i].path);
    EXPECT_EQ(da[i].shape, db[i].shape) << da[i].path;
    EXPECT_EQ(da[i].stored_crc, db[i].stored_crc) << da[i].path;
    EXPECT_EQ(da[i].computed_crc, db[i].computed_crc) << da[i].path;
    if (da[i].dtype == "string") continue;
    const std::string bytes_a = data_bytes(a, da[i].path), bytes_b = data_bytes(b, db[i].path);
    EXPECT_EQ(bytes_a.size(), da[i].bytes) << da[i].path;
    EXPECT_TRUE(bytes_a == bytes_b) << da[i].path << ": the data bytes differ between " << a << " and " << b;
  }
}

// Every parameter's and slot's stored checksum is the CRC of the host values themselves.
inline void expect_checksums_of(const std::string& path, const OddCheckpoint& ck) {
  CheckpointReader r;
  r.open(path);
  std::vector<std::pair<std::string, uint32_t>> want;
  for (int i = 0; i < ck.params.size(); ++i) {
    const Tensor v = ck.params.value(i);
    want.emplace_back("/model/" + ck.params.entry(i).name, crc32_of(v.data(), v.nbytes()));
  }
  for (const auto& s : ck.req.slots)
    want.emplace_back("/optimizer/" + s.param + "/" + s.slot, crc32_of(s.value.data(), s.value.nbytes()));
  for (const auto& [dataset, crc] : want) {
    bool found = false;
    for (const auto& d : r.list_datasets()) {
      if (d.path != dataset) continue;
      found = true;
      EXPECT_EQ(d.stored_crc, crc) << dataset << " in " << path;
    }
    EXPECT_TRUE(found) << dataset << " missing from " << path;
  }
}

}  // namespace loom::test
