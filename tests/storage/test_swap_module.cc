// test_swap_module.cc — the swap device's SystemC module (binding/
// swap_device_module.h) with several initiators:
//   - each response goes back to the initiator that sent the request;
//   - requests enter the C model in arrival order (annotated delays
//     included), so every completion time equals that of a bare C model fed
//     the same arrivals;
//   - an initiator that answers BEGIN_RESP with TLM_ACCEPTED gets no second
//     response before its END_RESP (response exclusion);
//   - an unsupported command gets TLM_COMMAND_ERROR_RESPONSE;
//   - the trace has one submit and one done event per request, in order.
// One SystemC simulation per process, so this is one program with its own
// checks; it prints the first failure and exits non-zero.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>

#include "run_context.h"
#include "sim_time.h"
#include "swap_device_module.h"

using namespace apfsim;

namespace {

int failures = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      failures++;                                          \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                   \
      std::fputc('\n', stderr);                            \
    }                                                      \
  } while (0)

struct Sent {
  uint64_t call_order;  // global order of nb_transport_fw calls
  uint64_t arrival_ns;  // now + annotated delay
  uint32_t bytes;
  uint64_t response_ns = 0;
  tlm::tlm_response_status status = tlm::TLM_INCOMPLETE_RESPONSE;
};

uint64_t next_call = 0;

class Initiator : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<Initiator> socket;
  // `tag` goes into the address so a response can be traced to its sender;
  // `accept_resp`: answer BEGIN_RESP with TLM_ACCEPTED and END_RESP 1 us later.
  Initiator(sc_core::sc_module_name name, uint64_t tag, bool accept_resp, int n, uint64_t gap_ns,
            uint64_t delay_ns)
      : sc_module(name), socket("socket"), tag_(tag), accept_resp_(accept_resp), n_(n),
        gap_ns_(gap_ns), delay_ns_(delay_ns), payloads_(n + 1), sent_(n + 1) {
    socket.register_nb_transport_bw(this, &Initiator::nb_transport_bw);
    SC_HAS_PROCESS(Initiator);
    SC_THREAD(run);
    SC_METHOD(end_resp);
    sensitive << end_resp_event_;
    dont_initialize();
  }
  std::vector<Sent> &sent() { return sent_; }
  int responses() const { return responses_; }
  bool overlapped() const { return overlapped_; }

 private:
  void run() {
    for (int i = 0; i <= n_; i++) {
      wait(ns(gap_ns_));
      tlm::tlm_generic_payload &t = payloads_[i];
      bool bad = i == n_;  // the last one carries an unsupported command
      t.set_command(bad ? tlm::TLM_IGNORE_COMMAND
                        : (i % 3 == 2 ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND));
      t.set_address(tag_ | (uint64_t)i << 12);
      uint32_t bytes = 4096u * (1 + i % 4);
      t.set_data_length(bytes);
      t.set_data_ptr(nullptr);
      t.set_streaming_width(bytes);
      t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      // Alternate annotated delays so arrivals interleave with the other initiator.
      uint64_t delay = (i % 2) ? delay_ns_ : 0;
      sent_[i] = Sent{next_call++, now_ns() + delay, bytes};
      tlm::tlm_phase phase = tlm::BEGIN_REQ;
      sc_core::sc_time d = ns(delay);
      tlm::tlm_sync_enum s = socket->nb_transport_fw(t, phase, d);
      CHECK(s == tlm::TLM_UPDATED && phase == tlm::END_REQ, "request not accepted at once");
    }
  }
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload &t, tlm::tlm_phase &phase,
                                     sc_core::sc_time &) {
    CHECK(phase == tlm::BEGIN_RESP, "unexpected phase on the backward path");
    CHECK((t.get_address() & ~UINT64_C(0xfffffff)) == tag_,
          "response for address %#llx reached initiator %#llx",
          (unsigned long long)t.get_address(), (unsigned long long)tag_);
    size_t i = (t.get_address() & 0xfffffff) >> 12;
    sent_[i].response_ns = now_ns();
    sent_[i].status = t.get_response_status();
    responses_++;
    if (!accept_resp_) return tlm::TLM_COMPLETED;
    if (open_ != nullptr) overlapped_ = true;
    open_ = &t;
    end_resp_event_.notify(ns(1000));
    return tlm::TLM_ACCEPTED;
  }
  void end_resp() {
    tlm::tlm_generic_payload *t = open_;
    open_ = nullptr;
    tlm::tlm_phase phase = tlm::END_RESP;
    sc_core::sc_time d = sc_core::SC_ZERO_TIME;
    socket->nb_transport_fw(*t, phase, d);
  }

  uint64_t tag_;
  bool accept_resp_;
  int n_;
  uint64_t gap_ns_, delay_ns_;
  std::vector<tlm::tlm_generic_payload> payloads_;
  std::vector<Sent> sent_;
  sc_core::sc_event end_resp_event_;
  tlm::tlm_generic_payload *open_ = nullptr;
  int responses_ = 0;
  bool overlapped_ = false;
};

}  // namespace

int sc_main(int, char **) {
  sc_core::sc_set_time_resolution(1, sc_core::SC_PS);

  std::unique_ptr<sim_config> cfg(new sim_config{});
  cfg->seed = 11;
  swap_device_config dev_cfg{};
  dev_cfg.latency.dist = LATENCY_LOGNORMAL;
  dev_cfg.latency.median_ns = 20000;
  dev_cfg.latency.sigma_milli = 400;
  dev_cfg.channels = 2;
  dev_cfg.bandwidth_bytes_per_s = 500000000;

  char trace_path[] = "/tmp/apfsim-test-swap-module-XXXXXX";
  int fd = mkstemp(trace_path);
  CHECK(fd >= 0, "mkstemp");
  close(fd);
  diag err{};
  const trace_kv header[] = {{"seed", "11", 0}};
  trace_writer *trace = trace_writer_open(trace_path, header, 1, nullptr, 0, &err);
  CHECK(trace != nullptr, "trace: %s", err.msg);
  RunContext ctx{*cfg, trace};

  const int n = 40;
  SwapDeviceModule device("device", ctx, dev_cfg, "test-device");
  Initiator a("a", UINT64_C(0xa0000000), false, n, 7000, 3000);
  Initiator b("b", UINT64_C(0xb0000000), true, n, 11000, 8000);
  Initiator c("c", UINT64_C(0xc0000000), false, n, 5000, 0);
  a.socket.bind(device.socket);
  b.socket.bind(device.socket);
  c.socket.bind(device.socket);
  sc_core::sc_start(ns(100000000));

  // Reference: the bare C model fed the valid requests in (arrival, call order).
  struct Ref {
    uint64_t arrival, order;
    Sent *s;
  };
  std::vector<Ref> refs;
  for (Initiator *ini : {&a, &b, &c})
    for (int i = 0; i < n; i++) refs.push_back(Ref{ini->sent()[i].arrival_ns, ini->sent()[i].call_order, &ini->sent()[i]});
  std::sort(refs.begin(), refs.end(), [](const Ref &x, const Ref &y) {
    return x.arrival != y.arrival ? x.arrival < y.arrival : x.order < y.order;
  });
  // Initiators that complete at once see their responses exactly at the
  // model's completion time; b may see them later (response exclusion).
  latency_source src;
  latency_source_init(&src, &dev_cfg.latency, cfg->seed, "test-device");
  swap_device ref;
  swap_device_init(&ref, dev_cfg.channels, dev_cfg.bandwidth_bytes_per_s, latency_source_sample, &src);
  for (Ref &r : refs) {
    uint64_t done = swap_device_submit(&ref, r.arrival, r.s->bytes);
    CHECK(r.s->status == tlm::TLM_OK_RESPONSE, "request not answered OK");
    bool from_b = &b.sent()[0] <= r.s && r.s < &b.sent()[0] + n;
    if (from_b)
      CHECK(r.s->response_ns >= done, "response at %llu before the model's completion %llu",
            (unsigned long long)r.s->response_ns, (unsigned long long)done);
    else
      CHECK(r.s->response_ns == done, "response at %llu, model completion %llu",
            (unsigned long long)r.s->response_ns, (unsigned long long)done);
  }
  CHECK(ref.stats.total_latency_ns == device.stats().total_latency_ns,
        "module and model disagree on total latency");
  for (Initiator *ini : {&a, &b, &c}) {
    CHECK(ini->responses() == n + 1, "%d responses, want %d", ini->responses(), n + 1);
    CHECK(ini->sent()[n].status == tlm::TLM_COMMAND_ERROR_RESPONSE, "bad command not refused");
    CHECK(ini->sent()[n].response_ns == ini->sent()[n].arrival_ns, "bad command not refused on arrival");
  }
  CHECK(!b.overlapped(), "a second BEGIN_RESP reached b before its END_RESP");
  CHECK(device.completed() == 3u * n, "completed %llu", (unsigned long long)device.completed());
  CHECK(device.reads() + device.writes() == 3u * n, "reads + writes");
  uint64_t writes = 0;
  for (int i = 0; i < n; i++) writes += i % 3 == 2;
  CHECK(device.writes() == 3 * writes, "writes %llu", (unsigned long long)device.writes());
  swap_device_summary s = device.summary();
  CHECK(s.requests == 3u * n && s.channel_util_ppm > 0 && s.channel_util_ppm <= 1000000, "summary");

  char sha[TRACE_SHA256_HEX_LEN + 1];
  CHECK(trace_close(trace, sha, &err), "trace_close: %s", err.msg);
  trace_reader *rd = trace_reader_open(trace_path, &err);
  CHECK(rd != nullptr, "trace_reader_open: %s", err.msg);
  int submits = 0, dones = 0, errors = 0;
  trace_record rec;
  trace_read_status st;
  while (rd && (st = trace_reader_next(rd, &rec, &err)) == TRACE_READ_EVENT) {
    std::string name = rec.name;
    submits += name == "swap_read_submit" || name == "swap_write_submit";
    dones += name == "swap_read_done" || name == "swap_write_done";
    errors += name == "swap_error";
    if (name.find("_submit") != std::string::npos)
      CHECK(std::strstr(rec.fields, " done_at ") != nullptr, "submit without done_at: %s", rec.line);
  }
  if (rd) {
    CHECK(st == TRACE_READ_END, "trace: %s", err.msg);
    trace_reader_close(rd);
  }
  CHECK(submits == 3 * n && dones == 3 * n && errors == 3, "trace events: %d submit, %d done, %d error",
        submits, dones, errors);
  unlink(trace_path);

  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("storage_swap_module: all checks passed (%d requests from 3 initiators)\n", 3 * n);
  return 0;
}

// Our own main, so the SystemC banner can be silenced before the library
// prints it (libsystemc's main() would print it before calling sc_main).
int main(int argc, char **argv) {
  setenv("SC_COPYRIGHT_MESSAGE", "DISABLE", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
