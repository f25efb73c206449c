#include "reelq/storage/s3_errors.h"

#include <charconv>

namespace reelq::storage::s3 {

namespace {

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x110000) {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::string DecodeEntities(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != '&') {
      out.push_back(in[i++]);
      continue;
    }
    size_t semi = in.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back(in[i++]);
      continue;
    }
    std::string_view ent = in.substr(i + 1, semi - i - 1);
    if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() > 1 && ent[0] == '#') {
      uint32_t cp = 0;
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (ec != std::errc() || p != digits.data() + digits.size() || digits.empty()) {
        out.append(in.substr(i, semi - i + 1));
      } else {
        AppendUtf8(out, cp);
      }
    } else {
      out.append(in.substr(i, semi - i + 1));
    }
    i = semi + 1;
  }
  return out;
}

std::string Or(std::optional<std::string> v, std::string_view fallback) {
  return v && !v->empty() ? *v : std::string(fallback);
}

}  // namespace

std::optional<std::string> XmlText(std::string_view xml, std::string_view tag) {
  if (tag.empty()) return std::nullopt;
  const std::string open = "<" + std::string(tag);
  const std::string close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t after = pos + open.size();
    if (after >= xml.size()) return std::nullopt;
    char c = xml[after];
    if (c != '>' && c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '/') {
      pos = after;  // <CodeX> is not <Code>
      continue;
    }
    size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) return std::nullopt;
    if (xml[gt - 1] == '/') return std::string();  // <Tag/>
    size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) return std::nullopt;
    return DecodeEntities(xml.substr(gt + 1, end - gt - 1));
  }
  return std::nullopt;
}

Error MapS3Error(int status, std::string_view body, std::string_view what, std::string_view bucket,
                 const S3ErrorContext& context) {
  const std::string code = Or(XmlText(body, "Code"), "");
  std::string bucket_region;  // where AWS says the bucket is, when it says so
  if (context.headers != nullptr) {
    for (const auto& [name, value] : *context.headers) {
      if (name == "x-amz-bucket-region") bucket_region = value;
    }
  }
  std::string message = Or(XmlText(body, "Message"), "");
  Error err{.category = ErrorCategory::kInternal, .provider_code = code, .http_status = status};
  auto describe = [&](std::string_view why) {
    std::string out(what);
    out += ": ";
    out += why;
    if (!code.empty()) out += " (" + code + (message.empty() ? "" : ": " + message) + ")";
    out += " [HTTP " + std::to_string(status) + "]";
    return out;
  };

  const bool wrong_region =
      !bucket_region.empty() && bucket_region != context.region &&
      (status == 301 || status == 400 || code == "PermanentRedirect" ||
       code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException");
  if (wrong_region) {
    // A request to a bucket of another region: AWS answers 301 (or 400 to a request signed for
    // the wrong region), to HEAD with no body, and names the bucket's region in a header.
    err.category = ErrorCategory::kInvalidRequest;
    err.message = describe(
        "bucket \"" + std::string(bucket) + "\" is in region " + bucket_region + ", not " +
        (context.region.empty() ? std::string("the one configured") : std::string(context.region)) +
        "; set storage.s3.region: " + bucket_region);
  } else if (code == "AccessDenied" || code == "SignatureDoesNotMatch" ||
             code == "InvalidAccessKeyId" || code == "ExpiredToken" || code == "InvalidToken" ||
             code == "TokenRefreshRequired" || code == "AccountProblem" ||
             code == "AllAccessDisabled" || code == "RequestTimeTooSkewed" ||
             code == "InvalidSecurity" || code == "NotSignedUp") {
    err.category = ErrorCategory::kAuthFailed;
    err.message = describe(
        "the object store refused our credentials; check "
        "storage.s3.access_key / secret_key, their permissions on bucket \"" +
        std::string(bucket) + "\", and the clock");
  } else if (code == "NoSuchBucket") {
    err.category = ErrorCategory::kInvalidRequest;
    err.message = describe("bucket \"" + std::string(bucket) +
                           "\" does not exist (storage.s3.bucket, storage.s3.endpoint)");
  } else if (code == "NoSuchKey") {
    err.category = ErrorCategory::kNotFound;
    err.message = describe("no such object");
  } else if (code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
             code == "ServiceUnavailable" || code == "OperationAborted" || code == "BadDigest" ||
             code == "XAmzContentSHA256Mismatch" || code == "IncompleteBody" ||
             code == "NoSuchUpload" || code == "ConditionalRequestConflict") {
    // NoSuchUpload: the upload was aborted under us; a new attempt starts a new one.
    // ConditionalRequestConflict (409): a conditional write raced another on the same key; AWS
    // says to retry, and the retry's If-None-Match then answers whether the object exists.
    err.category = ErrorCategory::kRetryable;
    err.message = describe("transient object store failure");
  } else if (status == 401 || status == 403) {
    err.category = ErrorCategory::kAuthFailed;
    if (context.method == "HEAD") {
      // HEAD has no body to say why. It needs s3:GetObject, and S3 answers a missing key with
      // 403 rather than 404 unless the caller may also list the bucket: a write that checks
      // first that its key is free (if_absent) then fails on every new clip.
      err.message = describe(
          "access denied by the object store; check storage.s3 credentials: reading an "
          "object's metadata (HEAD) needs s3:GetObject, and checking for a key that does not "
          "exist yet (as every write of a new clip does) also needs s3:ListBucket on bucket \"" +
          std::string(bucket) + "\" (without it S3 answers 403 instead of 404)");
    } else {
      err.message = describe("access denied by the object store; check storage.s3 credentials");
    }
  } else if (status == 301 || code == "PermanentRedirect") {
    err.category = ErrorCategory::kInvalidRequest;
    err.message =
        describe("the object store sent the request elsewhere: bucket \"" + std::string(bucket) +
                 "\" is likely in another region than storage.s3.region (" +
                 std::string(context.region) + "), or storage.s3.endpoint names the wrong host");
  } else if (status == 404) {
    err.category = ErrorCategory::kNotFound;
    err.message = describe("not found");
  } else if (status == 408 || status == 429 || status >= 500) {
    err.category = ErrorCategory::kRetryable;
    err.message = describe("transient object store failure");
  } else if (status >= 400) {
    err.category = ErrorCategory::kInvalidRequest;
    err.message = describe("request rejected by the object store");
  } else {
    err.message = describe("unexpected answer from the object store");
  }
  return err;
}

}  // namespace reelq::storage::s3
