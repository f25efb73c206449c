#pragma once

// A webhook receiver for tests: a plain HTTP/1.1 server on 127.0.0.1 (port 0), one thread per
// connection, that records every request and answers each with the status `respond` picks
// (by the request's index from 0). kHold leaves the request unanswered until the peer closes or
// the receiver stops (a receiver that is slow, while its sender dies).
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace reelq::testing {

struct ReceivedRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
};

class WebhookReceiver {
 public:
  static constexpr int kHold = -1;
  explicit WebhookReceiver(std::function<int(int index)> respond);
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  int port() const { return port_; }
  std::string Url(const std::string& path = "/hook") const;
  // Waits until at least `n` requests have arrived or `timeout` passes; all received so far.
  std::vector<ReceivedRequest> WaitFor(size_t n, std::chrono::milliseconds timeout);
  std::vector<ReceivedRequest> Received();

 private:
  void AcceptLoop();
  void Serve(int fd);

  std::function<int(int)> respond_;
  int listen_fd_ = -1;
  int port_ = 0;
  bool stopping_ = false;  // under mu_
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<ReceivedRequest> received_;
  std::vector<int> open_fds_;
  std::thread acceptor_;
  std::vector<std::thread> servers_;
};

// The Standard Webhooks signature computed here, independently of reelq's code:
// "v1," + base64(HMAC-SHA256(base64decode(secret without "whsec_"), id.timestamp.body)).
std::string ExpectedSignature(const std::string& secret, const std::string& id,
                              const std::string& timestamp, const std::string& body);

}  // namespace reelq::testing
