#pragma once

// A tiny S3 for tests: a Beast server on 127.0.0.1:0 (one thread per connection) that keeps
// objects and multipart uploads in memory (path-style, one bucket) or forwards every request
// to a real server, and injects faults chosen per request: canned error answers, or a
// connection closed in the middle of the request body.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace reelq::storage::testing {

struct FakeRequest {
  int index = 0;  // 1-based, in order of arrival
  std::string method;
  std::string target;  // path?query as received
  std::string path;
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-case names
  bool IsPart() const { return query.contains("partNumber"); }
  int PartNumber() const;
};

struct FaultAction {
  // kLoseAnswer: the request is carried out, then the connection closes unanswered.
  enum Kind { kPass, kRespond, kCloseMidBody, kLoseAnswer } kind = kPass;
  int status = 0;
  std::string body;                                          // an S3 <Error> document
  std::vector<std::pair<std::string, std::string>> headers;  // sent with a kRespond answer
  static FaultAction Pass() { return {}; }
  static FaultAction Respond(int status, std::string code, std::string message = "injected");
  // Answers with `status`, `headers` and no error document (as S3 answers HEAD).
  static FaultAction RespondBare(int status,
                                 std::vector<std::pair<std::string, std::string>> headers = {});
  static FaultAction CloseMidBody() { return {.kind = kCloseMidBody}; }
  static FaultAction LoseAnswer() { return {.kind = kLoseAnswer}; }
};

struct FakeObject {
  std::string content;
  std::string content_type;
  std::map<std::string, std::string> metadata;
};

class FakeS3 {
 public:
  // upstream "127.0.0.1:port": forward what is not a fault there instead of answering.
  explicit FakeS3(std::string upstream = "");
  ~FakeS3();

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Decides each request's fate (called on the connection's thread, under the lock).
  void SetFault(std::function<FaultAction(const FakeRequest&)> fault);

  std::vector<std::string> Log();                             // "METHOD target" per request
  std::optional<FakeObject> Object(const std::string& path);  // "/bucket/key"
  size_t OpenUploads();

 private:
  void Accept();
  void Serve(boost::asio::ip::tcp::socket socket);

  std::string upstream_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
  std::vector<int> open_fds_;
  bool stopping_ = false;
  int requests_ = 0;
  std::function<FaultAction(const FakeRequest&)> fault_;
  std::vector<std::string> log_;
  std::map<std::string, FakeObject> objects_;
  struct Upload {
    std::string path;
    FakeObject meta;
    std::map<int, std::string> parts;
  };
  std::map<std::string, Upload> uploads_;
  int next_upload_ = 1;
};

}  // namespace reelq::storage::testing
