// loom_cooccur_bench CORPUS OUT_DIR [window min_count memory_gb]: builds the vocabulary and
// the co-occurrence partitions (shuffled, ready for training) and prints wall time, peak
// RSS per rank and non-zeros. Run under mpirun for several ranks (bench/cooccur.sh).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "dist/mpi_communicator.h"
#include "io/cooccur.h"
#include "io/vocab.h"

int main(int argc, char** argv) {
  loom::MpiCommunicator& comm = loom::MpiCommunicator::init_world(&argc, &argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CORPUS OUT_DIR [window min_count memory_gb]\n", argv[0]);
    return loom::kExitUsage;
  }
  try {
    loom::CorpusOptions corpus;
    corpus.paths = {argv[1]};
    loom::VocabOptions vo;
    vo.min_count = argc > 4 ? std::atoll(argv[4]) : 5;
    loom::CooccurOptions co;
    co.window = argc > 3 ? std::atoi(argv[3]) : 15;
    co.memory_gb = argc > 5 ? std::atof(argv[5]) : 4.0;
    auto t0 = std::chrono::steady_clock::now();
    loom::CorpusLayout layout = loom::CorpusLayout::scan(comm, corpus);
    loom::Vocab vocab = loom::build_vocab(comm, layout, corpus, vo);
    double t_vocab = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (comm.rank() == 0) loom::write_vocab_txt(vocab, std::string(argv[2]) + "/vocab.txt");
    loom::CooccurResult res = loom::build_cooccurrence(comm, vocab, layout, corpus, co, argv[2]);
    double t_all = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    std::printf("rank %d/%d: vocab %d words in %.2f s; total %.2f s; nnz %lld (partition %zu); "
                "spills %lld; peak RSS %.2f GB\n",
                comm.rank(), comm.size(), vocab.size(), t_vocab, t_all,
                static_cast<long long>(res.stats.nnz), res.entries.size(),
                static_cast<long long>(res.stats.spills), static_cast<double>(ru.ru_maxrss) / 1048576.0);
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    comm.abort(e.what(), e.exit_code());
  }
  loom::MpiCommunicator::shutdown_world();
  return 0;
}
