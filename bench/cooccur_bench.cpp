// loom_cooccur_bench CORPUS OUT_DIR [window min_count memory_gb threads]: builds the
// vocabulary and the co-occurrence partitions (shuffled, ready for training) and prints
// wall time per phase, peak RSS per rank and non-zeros. Run under mpirun for several ranks
// (bench/cooccur.sh); `threads` counting threads per rank.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "dist/mpi_communicator.h"
#include "models/glove/cooccur_build.h"
#include "io/vocab.h"

int main(int argc, char** argv) {
  loom::MpiCommunicator& comm = loom::MpiCommunicator::init_world(&argc, &argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CORPUS OUT_DIR [window min_count memory_gb threads]\n", argv[0]);
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
    co.threads = argc > 6 ? std::atoi(argv[6]) : 1;
    vo.threads = co.threads;
    auto t0 = std::chrono::steady_clock::now();
    loom::CorpusLayout layout = loom::CorpusLayout::scan(comm, corpus);
    loom::Vocab vocab = loom::build_vocab(comm, layout, corpus, vo);
    double t_vocab = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (comm.rank() == 0) loom::write_vocab_txt(vocab, std::string(argv[2]) + "/vocab.txt");
    loom::CooccurResult res = loom::build_cooccurrence(comm, vocab, layout, corpus, co, argv[2]);
    double t_all = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    const loom::CooccurStats& s = res.stats;
    std::printf("rank %d/%d x %d threads: vocab %d words %.2f s | count %.2f | exchange %.2f | "
                "shuffle %.2f | write %.2f | total %.2f s; nnz %lld (partition %zu); spills %lld; "
                "peak RSS %.2f GB\n",
                comm.rank(), comm.size(), co.threads, vocab.size(), t_vocab, s.count_seconds,
                s.exchange_seconds, s.shuffle_seconds, s.write_seconds, t_all,
                static_cast<long long>(s.nnz), res.entries.size(), static_cast<long long>(s.spills),
                static_cast<double>(ru.ru_maxrss) / 1048576.0);
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    comm.abort(e.what(), e.exit_code());
  }
  loom::MpiCommunicator::shutdown_world();
  return 0;
}
