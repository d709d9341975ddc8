#include "sim/exchange.hpp"

#include <ctime>

#include "sim/errors.hpp"

namespace turnout::sim {

Document Exchange::new_document() {
    arena_.clear();
    return arena_.make_document();
}

bool Exchange::parse_body(Document& doc) {
    const std::string_view problem = parse_object(request_.body, doc);
    if (problem.empty()) {
        return true;
    }
    render_failure(400, problem, "invalid_json");
    return false;
}

void Exchange::render_failure(unsigned status, std::string_view message, std::string_view code) {
    sim::render_failure(body_, settings().kind, status, message, code);
}

Reply Exchange::new_reply(std::string_view model) const {
    Reply reply;
    reply.id = state_->stats.next_id.fetch_add(1, std::memory_order_relaxed) + 1;
    reply.created = static_cast<std::int64_t>(std::time(nullptr));
    reply.model = model;
    reply.prompt_tokens = (request_.body.size() + 3) / 4;
    return reply;
}

}  // namespace turnout::sim
