#include "tests/support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace turnout::test {
namespace {

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

bool parse_uint(std::string_view s, std::uint64_t& out, int base = 10) {
    if (s.empty()) return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
    return ec == std::errc() && ptr == s.data() + s.size();
}

int open_socket(std::uint16_t port, std::string& error) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        error = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

}  // namespace

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string HttpResponse::header(std::string_view name) const {
    auto it = headers.find(to_lower(name));
    return it == headers.end() ? std::string() : it->second;
}

bool HttpResponse::has_header(std::string_view name) const {
    return headers.count(to_lower(name)) > 0;
}

std::size_t HttpResponse::header_count(std::string_view name) const {
    return headers.count(to_lower(name));
}

RawConnection::RawConnection(std::uint16_t port) { fd_ = open_socket(port, error_); }

RawConnection::~RawConnection() { close(); }

void RawConnection::close(bool reset) {
    if (fd_ < 0) return;
    if (reset) {
        linger lg{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::close(fd_);
    fd_ = -1;
}

void RawConnection::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawConnection::send(std::string_view bytes, Millis timeout) {
    if (fd_ < 0) {
        error_ = "send: not connected";
        return false;
    }
    auto deadline = Clock::now() + timeout;
    while (!bytes.empty()) {
        pollfd p{fd_, POLLOUT, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            error_ = r == 0 ? "send: timeout" : std::string("poll: ") + std::strerror(errno);
            return false;
        }
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            error_ = std::string("send: ") + std::strerror(errno);
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool RawConnection::send_request(std::string_view method, std::string_view target,
                                 const Headers& headers, std::string_view body) {
    std::string req;
    req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    bool has_host = false;
    bool has_length = false;
    for (const auto& [name, value] : headers) {
        std::string lower = to_lower(name);
        has_host = has_host || lower == "host";
        has_length = has_length || lower == "content-length" || lower == "transfer-encoding";
    }
    if (!has_host) req += "Host: 127.0.0.1\r\n";
    for (const auto& [name, value] : headers) req.append(name).append(": ").append(value) += "\r\n";
    if (!has_length && (!body.empty() || method == "POST")) {
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "\r\n";
    req.append(body);
    return send(req);
}

ReadStatus RawConnection::fill(Clock::time_point deadline) {
    if (fd_ < 0) {
        error_ = "read: not connected";
        return ReadStatus::error;
    }
    for (;;) {
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            error_ = std::string("poll: ") + std::strerror(errno);
            return ReadStatus::error;
        }
        if (r == 0) {
            error_ = "read: timeout";
            return ReadStatus::timeout;
        }
        char buf[16384];
        ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            if (errno == ECONNRESET) {
                error_ = "read: connection reset by peer";
                return ReadStatus::closed;
            }
            error_ = std::string("recv: ") + std::strerror(errno);
            return ReadStatus::error;
        }
        if (n == 0) {
            error_ = "read: connection closed by peer";
            return ReadStatus::closed;
        }
        buffer_.append(buf, static_cast<std::size_t>(n));
        return ReadStatus::data;
    }
}

ReadStatus RawConnection::read_some(std::string& out, Millis timeout) {
    if (buffer_.empty()) {
        ReadStatus s = fill(Clock::now() + timeout);
        if (s != ReadStatus::data) return s;
    }
    out += take_buffered();
    return ReadStatus::data;
}

std::string RawConnection::take_buffered() {
    std::string out;
    out.swap(buffer_);
    return out;
}

bool RawConnection::wait_closed_by_peer(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    buffer_.clear();
    for (;;) {
        ReadStatus s = fill(deadline);
        buffer_.clear();
        if (s == ReadStatus::closed) return true;
        if (s == ReadStatus::error || s == ReadStatus::timeout) return false;
    }
}

bool RawConnection::read_line(std::string& line, Clock::time_point deadline) {
    for (;;) {
        auto pos = buffer_.find('\n');
        if (pos != std::string::npos) {
            line = buffer_.substr(0, pos);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            buffer_.erase(0, pos + 1);
            return true;
        }
        if (fill(deadline) != ReadStatus::data) return false;
    }
}

std::optional<HttpResponse> RawConnection::read_head(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        HttpResponse response;
        std::string line;
        if (!read_line(line, deadline)) return std::nullopt;
        // "HTTP/1.1 200 OK"
        auto sp1 = line.find(' ');
        if (sp1 == std::string::npos || line.compare(0, 5, "HTTP/") != 0) {
            error_ = "bad status line: " + line;
            return std::nullopt;
        }
        response.version = line.substr(0, sp1);
        auto sp2 = line.find(' ', sp1 + 1);
        std::string code = line.substr(sp1 + 1, sp2 == std::string::npos ? sp2 : sp2 - sp1 - 1);
        std::uint64_t status = 0;
        if (!parse_uint(code, status)) {
            error_ = "bad status code: " + line;
            return std::nullopt;
        }
        response.status = static_cast<int>(status);
        if (sp2 != std::string::npos) response.reason = line.substr(sp2 + 1);
        for (;;) {
            if (!read_line(line, deadline)) return std::nullopt;
            if (line.empty()) break;
            auto colon = line.find(':');
            if (colon == std::string::npos) {
                error_ = "bad header line: " + line;
                return std::nullopt;
            }
            response.headers.emplace(to_lower(trim(std::string_view(line).substr(0, colon))),
                                     std::string(trim(std::string_view(line).substr(colon + 1))));
        }
        if (response.status >= 100 && response.status < 200 && response.status != 101) continue;
        response.chunked =
            to_lower(response.header("transfer-encoding")).find("chunked") != std::string::npos;
        return response;
    }
}

bool RawConnection::read_chunked(std::string& out, Clock::time_point deadline) {
    for (;;) {
        std::string line;
        if (!read_line(line, deadline)) return false;
        std::string_view size_text = trim(std::string_view(line).substr(0, line.find(';')));
        std::uint64_t size = 0;
        if (!parse_uint(size_text, size, 16)) {
            error_ = "bad chunk size: " + line;
            return false;
        }
        if (size == 0) {
            for (;;) {  // trailers
                if (!read_line(line, deadline)) return false;
                if (line.empty()) return true;
            }
        }
        while (buffer_.size() < size + 2) {
            if (fill(deadline) != ReadStatus::data) return false;
        }
        out.append(buffer_, 0, size);
        buffer_.erase(0, size + 2);
    }
}

bool RawConnection::read_body(HttpResponse& response, Clock::time_point deadline,
                              bool head_request) {
    if (head_request || response.status == 204 || response.status == 304) return true;
    if (response.chunked) return read_chunked(response.body, deadline);
    if (response.has_header("content-length")) {
        std::uint64_t length = 0;
        if (!parse_uint(response.header("content-length"), length)) {
            error_ = "bad content-length: " + response.header("content-length");
            return false;
        }
        while (buffer_.size() < length) {
            if (fill(deadline) != ReadStatus::data) return false;
        }
        response.body = buffer_.substr(0, length);
        buffer_.erase(0, length);
        return true;
    }
    for (;;) {  // delimited by EOF
        ReadStatus s = fill(deadline);
        if (s == ReadStatus::closed) break;
        if (s != ReadStatus::data) return false;
    }
    response.body = take_buffered();
    return true;
}

std::optional<HttpResponse> RawConnection::read_response(Millis timeout, bool head_request) {
    auto deadline = Clock::now() + timeout;
    auto response = read_head(timeout);
    if (!response) return std::nullopt;
    if (!read_body(*response, deadline, head_request)) return std::nullopt;
    return response;
}

std::optional<HttpResponse> http_request(std::uint16_t port, std::string_view method,
                                         std::string_view target, const Headers& headers,
                                         std::string_view body, Millis timeout) {
    RawConnection conn(port);
    if (!conn.connected()) return std::nullopt;
    if (!conn.send_request(method, target, headers, body)) return std::nullopt;
    return conn.read_response(timeout, method == "HEAD");
}

bool connect_refused(std::uint16_t port) {
    std::string error;
    int fd = open_socket(port, error);
    if (fd >= 0) {
        ::close(fd);
        return false;
    }
    return error.find(std::strerror(ECONNREFUSED)) != std::string::npos;
}

std::string sse_data(std::string_view event, bool* has_data) {
    std::string data;
    bool found = false;
    while (!event.empty()) {
        auto nl = event.find('\n');
        std::string_view line = event.substr(0, nl);
        event.remove_prefix(nl == std::string_view::npos ? event.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.substr(0, 5) != "data:") continue;
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (found) data += '\n';
        data.append(line);
        found = true;
    }
    if (has_data) *has_data = found;
    return data;
}

std::optional<HttpResponse> SseStreamReader::read_head(Millis timeout) {
    auto head = connection_.read_head(timeout);
    if (!head) {
        state_ = State::error;
        return std::nullopt;
    }
    chunked_ = head->chunked;
    if (!chunked_ && head->has_header("content-length")) {
        has_length_ = parse_uint(head->header("content-length"), remaining_length_);
    }
    return head;
}

bool SseStreamReader::decode_more(Clock::time_point deadline) {
    auto fill = [&]() {
        ReadStatus s = connection_.fill(deadline);
        if (s == ReadStatus::timeout) state_ = State::timeout;
        if (s == ReadStatus::closed) state_ = State::closed;
        if (s == ReadStatus::error) state_ = State::error;
        return s == ReadStatus::data;
    };
    if (!chunked_) {
        if (has_length_ && remaining_length_ == 0) {
            state_ = State::ended;
            return false;
        }
        if (connection_.buffered().empty() && !fill()) return false;
        std::string bytes;
        if (has_length_) {
            // Bytes of a following response stay in the connection.
            std::size_t n = std::min<std::size_t>(remaining_length_, connection_.buffered().size());
            bytes = connection_.buffered().substr(0, n);
            connection_.consume(n);
            remaining_length_ -= n;
        } else {
            bytes = connection_.take_buffered();
        }
        pending_ += bytes;
        body_ += bytes;
        return true;
    }
    for (;;) {
        const std::string& buf = connection_.buffered();
        if (in_chunk_) {
            if (chunk_remaining_ > 0) {
                if (buf.empty() && !fill()) return false;
                std::size_t n = std::min<std::size_t>(chunk_remaining_, buf.size());
                pending_.append(buf, 0, n);
                body_.append(buf, 0, n);
                connection_.consume(n);
                chunk_remaining_ -= n;
                return true;
            }
            // Chunk data done: expect CRLF.
            if (buf.size() < 2) {
                if (!fill()) return false;
                continue;
            }
            connection_.consume(2);
            in_chunk_ = false;
            continue;
        }
        auto nl = buf.find('\n');
        if (nl == std::string::npos) {
            if (!fill()) return false;
            continue;
        }
        std::string line = buf.substr(0, nl);
        connection_.consume(nl + 1);
        std::string_view size_text = trim(std::string_view(line).substr(0, line.find(';')));
        std::uint64_t size = 0;
        if (!parse_uint(size_text, size, 16)) {
            state_ = State::error;
            return false;
        }
        if (size == 0) {
            // Last chunk: skip trailers up to the blank line.
            for (;;) {
                const std::string& b = connection_.buffered();
                auto pos = b.find('\n');
                if (pos == std::string::npos) {
                    if (!fill()) return false;
                    continue;
                }
                bool blank = pos == 0 || (pos == 1 && b[0] == '\r');
                connection_.consume(pos + 1);
                if (blank) break;
            }
            state_ = State::ended;
            return false;
        }
        in_chunk_ = true;
        chunk_remaining_ = size;
    }
}

std::optional<std::string> SseStreamReader::next_event(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        // An event ends at a blank line: "\n\n" or "\r\n\r\n".
        std::size_t end = std::string::npos;
        std::size_t sep = 0;
        auto a = pending_.find("\n\n");
        auto b = pending_.find("\r\n\r\n");
        if (a != std::string::npos && (b == std::string::npos || a < b)) {
            end = a;
            sep = 2;
        } else if (b != std::string::npos) {
            end = b;
            sep = 4;
        }
        if (end != std::string::npos) {
            last_raw_event_ = pending_.substr(0, end + sep);
            pending_.erase(0, end + sep);
            bool has_data = false;
            std::string data = sse_data(last_raw_event_, &has_data);
            if (has_data) return data;
            continue;
        }
        if (state_ != State::open) return std::nullopt;
        if (!decode_more(deadline)) {
            if (state_ == State::open) state_ = State::error;
            // A final event without its blank line is still reported once.
            if (!pending_.empty() && state_ != State::timeout) {
                last_raw_event_.swap(pending_);
                pending_.clear();
                bool has_data = false;
                std::string data = sse_data(last_raw_event_, &has_data);
                if (has_data) return data;
            }
            return std::nullopt;
        }
    }
}

std::vector<std::string> SseStreamReader::read_all(Millis timeout) {
    std::vector<std::string> events;
    auto deadline = Clock::now() + timeout;
    while (auto event = next_event(std::chrono::duration_cast<Millis>(deadline - Clock::now()))) {
        events.push_back(std::move(*event));
    }
    return events;
}

}  // namespace turnout::test
