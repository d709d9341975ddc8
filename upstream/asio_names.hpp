#pragma once
/// The short names every Beast module uses, declared once (no Asio or Beast header needed).

namespace boost::asio {}
namespace boost::beast::http {}

namespace turnout {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
}  // namespace turnout
