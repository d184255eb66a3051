#pragma once
// Stop requests from signals. SIGINT, SIGTERM and SIGUSR1 do not kill a training run: they
// record a stop request, the training loop agrees on it with every rank (RunMonitor::end_step),
// saves a checkpoint and exits with 128 + signal (core/error.h). The handler does nothing but
// an atomic compare-and-swap, so it is async-signal-safe.
//
// Ctrl-C twice kills: SIGINT is installed with SA_RESETHAND, so the kernel restores the
// default action as it delivers the first SIGINT; a second SIGINT while that request is
// pending ends the process at once.
namespace loom {

// Installs the handlers (idempotent; call once from main, before the step loop).
void install_stop_handlers();

// The signal of the first stop request (SIGINT, SIGTERM or SIGUSR1), or 0 when none.
int pending_stop_signal();

// Forgets the pending request and re-arms SIGINT's one-shot handler if handlers were
// installed. For tests, and for a loop that has fully handled a request.
void clear_stop_request();

// "SIGTERM", "SIGINT", "SIGUSR1", "SIGHUP", "SIGKILL", else "signal N". Not for use inside
// a handler.
const char* stop_signal_name(int signal);

}  // namespace loom
