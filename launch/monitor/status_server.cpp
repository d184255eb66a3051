#include "launch/monitor/status_server.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <list>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"

namespace loom {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// ---- rendering --------------------------------------------------------------------------

nlohmann::json json_number(double value) {
  if (!std::isfinite(value)) return nullptr;
  return value;
}

// Prometheus spells non-finite values NaN, +Inf, -Inf.
std::string prom_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

void prom_metric(std::string& out, std::string_view name, std::string_view help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name,
                     prom_number(value));
}

// A count that only grows within a run: Prometheus's counter type, named *_total, so that
// rate() and increase() apply to it.
void prom_counter(std::string& out, std::string_view name, std::string_view help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name,
                     prom_number(value));
}

void prom_per_rank(std::string& out, std::string_view name, std::string_view help,
                   const std::vector<double>& values) {
  out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
  for (size_t r = 0; r < values.size(); ++r)
    out += fmt::format("{}{{rank=\"{}\"}} {}\n", name, r, prom_number(values[r]));
}

// ---- HTTP -------------------------------------------------------------------------------

struct Response {
  int code = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string extra_headers;
};

const char* reason_phrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
  }
}

std::string serialize(const Response& r, bool head_only) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n{}\r\n",
      r.code, reason_phrase(r.code), r.content_type, r.body.size(), r.extra_headers);
  if (!head_only) out += r.body;
  return out;
}

Response error_response(int code) {
  Response r;
  r.code = code;
  r.body = fmt::format("{} {}\n", code, reason_phrase(code));
  if (code == 405) r.extra_headers = "Allow: GET, HEAD\r\n";
  return r;
}

// The request line "METHOD SP TARGET SP HTTP/1.x"; false when malformed.
bool parse_request_line(std::string_view line, std::string_view& method, std::string_view& target) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return false;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return false;
  method = line.substr(0, sp1);
  target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  for (char c : method)
    if (c < 'A' || c > 'Z') return false;
  for (char c : target)
    if (c <= ' ' || c == 0x7f) return false;
  return target.front() == '/' && version.size() == 8 && version.substr(0, 7) == "HTTP/1.";
}

// End of the header block: "\n\n" or "\n\r\n" (so "\r\n\r\n" and bare "\n\n" both count).
using BufIter = asio::buffers_iterator<asio::streambuf::const_buffers_type>;
std::pair<BufIter, bool> match_header_end(BufIter begin, BufIter end) {
  for (BufIter i = begin; i != end; ++i) {
    if (*i != '\n') continue;
    BufIter j = i;
    ++j;
    if (j != end && *j == '\r') ++j;
    if (j == end) return {i, false};   // maybe the end arrives with the next read
    if (*j == '\n') return {++j, true};
  }
  return {end, false};
}

}  // namespace

std::string status_json(const StatusSnapshot& s, double uptime_s) {
  nlohmann::ordered_json j;
  j["stage"] = s.stage;
  if (s.stage_done >= 0) {
    nlohmann::ordered_json progress;
    progress["done"] = s.stage_done;
    progress["total"] = s.stage_total > 0 ? nlohmann::ordered_json(s.stage_total) : nullptr;
    progress["unit"] = s.stage_unit;
    progress["fraction"] = s.stage_total > 0 ? json_number(static_cast<double>(s.stage_done) /
                                                           static_cast<double>(s.stage_total))
                                             : nullptr;
    progress["eta_s"] = s.stage_eta_s >= 0 ? json_number(s.stage_eta_s) : nullptr;
    j["stage_progress"] = std::move(progress);
  } else {
    j["stage_progress"] = nullptr;
  }
  j["step"] = s.step;
  j["total_steps"] = s.total_steps;
  j["epoch"] = s.epoch;
  j["loss"] = json_number(s.loss);
  j["lr"] = s.lr >= 0 ? json_number(s.lr) : nullptr;
  j["unit"] = s.unit;
  j["items_per_s"] = json_number(s.items_per_s);
  j["steps_per_s"] = json_number(s.steps_per_s);
  j["eta_s"] = s.eta_s >= 0 ? json_number(s.eta_s) : nullptr;
  j["world_size"] = s.world_size;
  j["uptime_s"] = json_number(uptime_s);
  nlohmann::ordered_json ranks = nlohmann::ordered_json::array();
  for (size_t r = 0; r < s.rank_step_seconds.size(); ++r) {
    nlohmann::ordered_json one;
    one["rank"] = r;
    one["step_seconds"] = json_number(s.rank_step_seconds[r]);
    one["mean_step_seconds"] =
        r < s.rank_mean_step_seconds.size() ? json_number(s.rank_mean_step_seconds[r]) : nullptr;
    ranks.push_back(std::move(one));
  }
  j["ranks"] = std::move(ranks);
  j["straggler_rank"] = s.straggler_rank >= 0 ? nlohmann::ordered_json(s.straggler_rank) : nullptr;
  nlohmann::ordered_json checkpoint = nullptr;
  if (!s.last_checkpoint_path.empty())
    checkpoint = {{"path", s.last_checkpoint_path}, {"step", s.last_checkpoint_step}};
  j["last_checkpoint"] = std::move(checkpoint);
  j["checkpoints_written"] = s.checkpoints_written;
  j["items_total"] = json_number(s.items_total);
  j["stop_signal"] = s.stop_signal;
  j["finished"] = s.finished;
  // A path with invalid UTF-8 must not make the handler throw: replace bad bytes.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string status_prometheus(const StatusSnapshot& s, double uptime_s) {
  std::string out;
  prom_counter(out, "loom_steps_total", "Steps done (the checkpoints' step numbers).",
               static_cast<double>(s.step));
  prom_counter(out, "loom_items_total", "Items (" + s.unit + ") trained on by all ranks in this run.",
               s.items_total);
  prom_counter(out, "loom_checkpoints_written_total", "Checkpoints written by this run.",
               static_cast<double>(s.checkpoints_written));
  prom_metric(out, "loom_total_steps", "Steps planned (0 = unknown).",
              static_cast<double>(s.total_steps));
  prom_metric(out, "loom_epoch", "Epochs completed.", static_cast<double>(s.epoch));
  prom_metric(out, "loom_loss", "Loss of the last step, mean over ranks.", s.loss);
  prom_metric(out, "loom_learning_rate", "Learning rate of the last step (NaN = not reported).",
              s.lr >= 0 ? s.lr : std::nan(""));
  if (s.stage_done >= 0) {
    prom_metric(out, "loom_stage_fraction", "Fraction of the running data stage done on rank 0 (NaN = unknown).",
                s.stage_total > 0 ? static_cast<double>(s.stage_done) / static_cast<double>(s.stage_total)
                                  : std::nan(""));
  }
  prom_metric(out, "loom_items_per_second", "Items (" + s.unit + ") per second over all ranks.",
              s.items_per_s);
  prom_metric(out, "loom_steps_per_second", "Steps per second.", s.steps_per_s);
  prom_metric(out, "loom_eta_seconds", "Estimated seconds to the last step (NaN = unknown).",
              s.eta_s >= 0 ? s.eta_s : std::nan(""));
  prom_metric(out, "loom_world_size", "Number of ranks.", s.world_size);
  prom_metric(out, "loom_uptime_seconds", "Seconds since the status server started.", uptime_s);
  prom_per_rank(out, "loom_rank_step_seconds", "Seconds of the last step on each rank.",
                s.rank_step_seconds);
  prom_per_rank(out, "loom_rank_mean_step_seconds",
                "Mean step seconds on each rank over the recent window.", s.rank_mean_step_seconds);
  prom_metric(out, "loom_straggler_rank", "Rank named as straggler (-1 = none).", s.straggler_rank);
  prom_metric(out, "loom_last_checkpoint_step", "Step of the last checkpoint (-1 = none).",
              static_cast<double>(s.last_checkpoint_step));
  prom_metric(out, "loom_stop_signal", "Agreed stop request signal (0 = none).", s.stop_signal);
  return out;
}

// ---- server -----------------------------------------------------------------------------

namespace {

class Connection;

// The server's state; StatusServer::Impl is this (a named type in an anonymous namespace so
// that Connection can use it without touching the header).
struct ServerCore {
  explicit ServerCore(StatusServerOptions o) : options(std::move(o)) {
    if (const char* hold = std::getenv("LOOM_FAULT_STATUS_HOLD_US")) hold_us = std::atol(hold);
  }

  StatusServerOptions options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  asio::steady_timer retry_timer{io};
  std::thread thread;
  int port = -1;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<bool> stopped{false};

  std::mutex mutex;                               // guards snapshot only
  std::shared_ptr<const StatusSnapshot> snapshot = std::make_shared<StatusSnapshot>();
  // Fault injection for tests/e2e/hostile_inputs_test.cpp: LOOM_FAULT_STATUS_HOLD_US = N
  // makes every answer hold `mutex` for N microseconds, as a server that rendered under the lock
  // would, so that publish() - the training thread - waits on the clients. The test shows
  // with it that its bound on the training rate under probes catches such a server.
  long hold_us = 0;

  // Io thread only.
  int active = 0;
  // Connections that wait on their client (no request yet, or answered and lingering), the
  // longest waiting first: what shed_idle() may close (Note [Status server isolation]).
  std::list<Connection*> idle;
  int64_t accept_failures = 0;
  bool accepting = false;

  std::shared_ptr<const StatusSnapshot> current() {
    std::lock_guard<std::mutex> lock(mutex);
    return snapshot;
  }
  double uptime_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  Response handle(std::string_view method, std::string_view target);
  void do_accept();
  bool shed_idle();
  bool any_sheddable();
  void on_connection_closed() {
    --active;
    do_accept();
  }
  void run_io();
};

// One client connection; lives as long as a handler holds it (io thread only).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore& server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), deadline_(server.io),
        request_(server.options.max_request_bytes) {}

  void start() {
    enter_idle();
    deadline_.expires_after(server_.options.io_timeout);
    deadline_.async_wait([self = shared_from_this()](ErrorCode ec) {
      if (!ec) self->close();   // too slow: drop it, whatever it was doing
    });
    asio::async_read_until(socket_, request_, match_header_end,
                           [self = shared_from_this()](ErrorCode ec, size_t) { self->on_read(ec); });
  }

  // Whether it only waits on its client, so that closing it to make room for a new one loses
  // nothing: it has sent nothing yet (nothing read, nothing waiting in the socket), or it was
  // answered and lingers with nothing unread (closing it then sends a FIN, not a reset that
  // could discard the answer).
  bool sheddable() {
    if (closed_ || (!answered_ && request_.size() > 0)) return false;
    ErrorCode ec;
    const size_t waiting = socket_.available(ec);
    return !ec && waiting == 0;
  }
  bool shed() {
    if (!sheddable()) return false;
    close();
    return true;
  }

 private:
  void enter_idle() {
    idle_it_ = server_.idle.insert(server_.idle.end(), this);
    in_idle_ = true;
  }
  void leave_idle() {
    if (!in_idle_) return;
    server_.idle.erase(idle_it_);
    in_idle_ = false;
  }

  void on_read(ErrorCode ec) {
    if (closed_) return;
    leave_idle();
    if (ec == asio::error::not_found) return respond(error_response(431), false);
    if (ec) return close();   // eof, reset, or closed by the deadline
    std::string_view data(static_cast<const char*>(request_.data().data()), request_.size());
    std::string_view method, target;
    if (!parse_request_line(data.substr(0, data.find('\n')), method, target))
      return respond(error_response(400), false);
    respond(server_.handle(method, target), method == "HEAD");
  }

  void respond(const Response& response, bool head_only) {
    response_ = serialize(response, head_only);
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](ErrorCode ec, size_t) {
                        if (ec) return self->close();
                        self->drain();
                      });
  }

  // Lingering close: stop sending, then read and discard whatever the client still sends
  // until it closes (or the deadline hits), so that closing does not reset the connection
  // before the client has read the answer.
  void drain() {
    ErrorCode ignored;
    if (!answered_) {
      answered_ = true;
      enter_idle();
      server_.do_accept();   // a slot that may be shed again: accepting may go on
    }
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](ErrorCode ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    leave_idle();
    ErrorCode ignored;
    socket_.close(ignored);
    deadline_.cancel();
    server_.on_connection_closed();
  }

  ServerCore& server_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  asio::streambuf request_;
  std::string response_;
  std::array<char, 1024> scratch_{};
  bool closed_ = false;
  bool answered_ = false;
  bool in_idle_ = false;
  std::list<Connection*>::iterator idle_it_;
};

bool ServerCore::any_sheddable() {
  for (Connection* c : idle) {
    if (c->sheddable()) return true;
  }
  return false;
}

bool ServerCore::shed_idle() {
  for (auto it = idle.begin(); it != idle.end();) {
    Connection* c = *it++;   // shed() erases c from the list
    if (c->shed()) return true;
  }
  return false;
}

Response ServerCore::handle(std::string_view method, std::string_view target) {
  if (method != "GET" && method != "HEAD") return error_response(405);
  const std::string_view path = target.substr(0, target.find('?'));
  if (path != "/status" && path != "/metrics") return error_response(404);
  if (hold_us > 0) {
    std::lock_guard<std::mutex> lock(mutex);
    std::this_thread::sleep_for(std::chrono::microseconds(hold_us));
  }
  const std::shared_ptr<const StatusSnapshot> s = current();
  Response r;
  try {
    if (path == "/status") {
      r.content_type = "application/json";
      r.body = status_json(*s, uptime_s());
    } else {
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = status_prometheus(*s, uptime_s());
    }
  } catch (const std::exception& e) {
    log::warn("status", std::string("cannot render ") + std::string(path) + ": " + e.what());
    return error_response(500);
  }
  return r;
}

void ServerCore::do_accept() {
  if (accepting || stopped.load() || !acceptor.is_open()) return;
  // At the cap, accept only while some connection merely waits on its client and may be shed
  // for the new one; otherwise on_connection_closed (or a connection answered) resumes
  // accepting. (Should a client send between this check and the accept, the new connection
  // is still taken, one over the cap, and the next call stops.)
  if (active >= options.max_connections && !any_sheddable()) return;
  accepting = true;
  acceptor.async_accept([this](ErrorCode ec, tcp::socket socket) {
    accepting = false;
    if (ec == asio::error::operation_aborted || stopped.load()) return;
    if (ec) {
      // Out of descriptors, say: try again shortly rather than spin; warn once a minute.
      if (accept_failures++ % 600 == 0) log::warn("status", "accept failed: " + ec.message());
      retry_timer.expires_after(std::chrono::milliseconds(100));
      retry_timer.async_wait([this](ErrorCode tec) {
        if (!tec) do_accept();
      });
      return;
    }
    // Note [Status server isolation]: idle connections must not keep a request waiting in
    // the backlog until their deadline; the longest idle one makes room.
    if (active >= options.max_connections) shed_idle();
    ++active;
    std::make_shared<Connection>(*this, std::move(socket))->start();
    do_accept();
  });
}

void ServerCore::run_io() {
  // Note [Status server isolation]: nothing thrown here may reach std::terminate.
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      log::warn("status", std::string("server thread recovered from: ") + e.what());
    } catch (...) {
      log::warn("status", "server thread recovered from an unknown exception");
    }
  }
}

}  // namespace

struct StatusServer::Impl : ServerCore {
  using ServerCore::ServerCore;
};

StatusServer::StatusServer(StatusServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& s = *impl_;
  const std::string& host = s.options.bind_address;
  ErrorCode ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) throw ConfigError("status server: bind address '" + host + "' is not an IP address");
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(s.options.port));
  const std::string where = address.is_v6() ? fmt::format("[{}]:{}", host, s.options.port)
                                            : fmt::format("{}:{}", host, s.options.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw IoError("status server cannot listen on " + where + ": " + ec.message() +
                  " (pick another port, or port 0 for an ephemeral one, or turn it off with -1)");
  }
  s.port = s.acceptor.local_endpoint().port();
  const std::string url_host = address.is_v6() ? "[" + host + "]" : host;
  log::info("status", fmt::format("listening on http://{}:{}", url_host, s.port));
  s.do_accept();
  s.thread = std::thread([&s] { s.run_io(); });
}

StatusServer::~StatusServer() { stop(); }

void StatusServer::publish(StatusSnapshot snapshot) {
  auto fresh = std::make_shared<const StatusSnapshot>(std::move(snapshot));
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->snapshot.swap(fresh);   // the old one is freed after the lock, by `fresh`
}

int StatusServer::port() const { return impl_->port; }

StatusSnapshot StatusServer::snapshot() const { return *impl_->current(); }

void StatusServer::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  // io.stop() abandons every pending handler; the connections they hold close their
  // sockets when the io_context destroys them (with impl_).
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  ErrorCode ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace loom
