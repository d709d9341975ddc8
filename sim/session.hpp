#pragma once
/// One client connection of the simulator, over plain TCP or TLS.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "sim/state.hpp"

namespace turnout::sim {

/// Serves `socket` until the client goes, over TLS when `tls` is set, as a detached coroutine
/// on the socket's executor, which must be single-threaded (a session has no strand). The
/// session keeps `state` and `tls` alive.
void spawn_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<SimState> state,
                   std::shared_ptr<boost::asio::ssl::context> tls);

}  // namespace turnout::sim
