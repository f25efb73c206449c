#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace reelq::storage {

using Digest256 = std::array<unsigned char, 32>;

// Incremental SHA-256 (OpenSSL EVP). Used for checksums of streamed clips and for SigV4
// payload hashes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(std::span<const std::byte> data);
  void Update(std::string_view data);
  // Ends this hash; the object is reset and may be reused.
  Digest256 Final();
  std::string FinalHex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string ToHex(std::span<const unsigned char> bytes);
std::string Sha256Hex(std::string_view data);
Digest256 HmacSha256(std::span<const unsigned char> key, std::string_view message);

// SHA-256 of the empty string, the payload hash of every request without a body.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace reelq::storage
