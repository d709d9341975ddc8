#pragma once
/// The admin listener's API: health, readiness, metrics, reload and the routes' decisions
/// (GET /admin/routes, GET /admin/routes/NAME/verdicts?limit=N, POST
/// /admin/routes/NAME/{promote,rollback,pin,unpin}). A request in, an answer out: no Beast, no
/// socket, so it runs under unit tests as it runs behind the session.
///
/// Nothing here waits on a lock or does file I/O: reads of the shadow's state come from its
/// published view, and what needs the shadow thread (verdicts, commands) or the control
/// thread (reload) is awaited there, the worker free meanwhile.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace turnout::metrics {
class Metrics;
}
namespace turnout::shadow {
class ShadowRuntime;
}

namespace turnout::gateway {

struct ReloadOutcome {
    bool ok = false;
    std::vector<std::string> errors;  ///< `FILE:LINE:COL: message`
};

struct AdminRequest {
    bool post = false;               ///< POST (else: GET or anything else)
    bool get = false;                ///< GET
    std::string_view path;           ///< without the query
    std::string_view target;         ///< as sent, query included
    std::string_view authorization;  ///< the Authorization header
    std::string_view body;
};

struct AdminAnswer {
    unsigned status = 200;
    std::string body;
    std::string_view content_type = "application/json";
};

/// What the admin API reads and calls. Pointers may be null (no metrics, no shadow).
struct AdminContext {
    const std::atomic<bool>* draining = nullptr;
    metrics::Metrics* metrics = nullptr;
    std::string_view admin_token;  ///< "" = /admin/* open. A secret.
    shadow::ShadowRuntime* shadow = nullptr;
    /// Runs a reload off the worker (on the control thread) and answers its outcome.
    std::function<boost::asio::awaitable<ReloadOutcome>()> reload;
};

boost::asio::awaitable<AdminAnswer> answer_admin(AdminContext context, AdminRequest request);

/// The value of query parameter `name` in a request target, or "".
std::string_view query_parameter(std::string_view target, std::string_view name);

}  // namespace turnout::gateway
