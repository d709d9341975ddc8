// The `keys:` (client keys) and `providers:` sections.
#include <string>

#include "base/bounded_file.hpp"
#include "config/sections.hpp"
#include "config/upstream_extras.hpp"
#include "config/values.hpp"

namespace turnout::config::detail {
namespace {

void load_key(LoadContext& ctx, const Field& f, ClientKeyConfig& key) {
    MapView m(ctx.diag, f, {"name", "key_env"});
    if (!m.valid()) return;
    if (m.required_text("name", key.name)) ctx.refs.define_key(*m.get("name"), key.name);
    if (m.require("key_env")) {
        ctx.refs.read_env_name(m, "key_env", key.key_env);
        if (key.key_env.empty() && m.get("key_env")->node.IsScalar()) {
            m.error("key_env", "must not be empty");
        }
    }
}

void load_base_url(const MapView& m, ProviderConfig& provider) {
    if (!m.require("base_url") || !m.string("base_url", provider.base_url)) return;
    if (auto message = parse_upstream_url(provider.base_url, provider.address); !message.empty()) {
        m.error("base_url", message);
    }
}

void load_ca_file(const MapView& m, std::string& out) {
    if (!m.string("ca_file", out) || out.empty()) return;
    // Read it the bounded way (a FIFO or a device here must not hang or bloat the reload);
    // OpenSSL reads it again when the TLS context is built.
    std::string text;
    std::string reason;
    if (!base::read_bounded_file(out, base::kMaxConfigFileBytes, text, reason)) {
        m.error("ca_file", "cannot read " + in_quotes(out) + ": " + reason);
    }
}

void load_price(LoadContext& ctx, const Field& f, PriceConfig& price) {
    MapView m(ctx.diag, f, {"input_per_mtok", "output_per_mtok"});
    if (!m.valid()) return;
    m.number("input_per_mtok", price.input_per_mtok, kNonNegative);
    m.number("output_per_mtok", price.output_per_mtok, kNonNegative);
}

void load_circuit_breaker(LoadContext& ctx, const Field& f, CircuitBreakerConfig& breaker) {
    MapView m(ctx.diag, f, {"failures", "cooldown"});
    if (!m.valid()) return;
    m.count("failures", breaker.failures);
    m.duration("cooldown", breaker.cooldown, true);
}

void load_provider(LoadContext& ctx, const Field& f, ProviderConfig& provider) {
    MapView m(ctx.diag, f,
              {"kind", "base_url", "api_key_env", "timeout", "connect_timeout",
               "first_byte_timeout", "stream_idle_timeout", "max_connections", "headers", "body",
               "max_tokens_default", "price", "ca_file", "tls_verify", "circuit_breaker"});
    if (!m.valid()) return;
    m.choice<ProviderKind>(
        "kind", provider.kind,
        {{"openai", ProviderKind::openai}, {"anthropic", ProviderKind::anthropic}});
    load_base_url(m, provider);
    ctx.refs.read_env_name(m, "api_key_env", provider.api_key_env);
    m.duration("timeout", provider.timeout, true);
    m.duration("connect_timeout", provider.connect_timeout, true);
    m.duration("first_byte_timeout", provider.first_byte_timeout, true);
    m.duration("stream_idle_timeout", provider.stream_idle_timeout, true);
    m.count("max_connections", provider.max_connections, 1);
    if (const auto* h = m.get("headers")) read_headers(ctx.diag, *h, provider.headers, false);
    if (const auto* b = m.get("body")) read_extra_body(ctx.diag, *b, provider.extra_body_json);
    m.count("max_tokens_default", provider.max_tokens_default, 1);
    if (const auto* p = m.get("price")) load_price(ctx, *p, provider.price);
    load_ca_file(m, provider.ca_file);
    m.boolean("tls_verify", provider.tls_verify);
    if (const auto* c = m.get("circuit_breaker")) {
        load_circuit_breaker(ctx, *c, provider.circuit_breaker);
    }
}

}  // namespace

void load_keys(LoadContext& ctx, const Field& f, std::vector<ClientKeyConfig>& keys) {
    for_each_item(ctx.diag, f,
                  [&](const Field& item) { load_key(ctx, item, keys.emplace_back()); });
}

void load_providers(LoadContext& ctx, const Field& f, std::vector<ProviderConfig>& providers) {
    if (!expect_map(ctx.diag, f, "a map of providers")) return;
    ctx.refs.providers_listed();
    for_each_entry(f, [&](const MapEntry& entry) {
        const std::string* name = entry.key_name(ctx.diag, f.path, "a provider name", false);
        if (!name || !ctx.refs.define_provider(entry.key_at, f.path, *name)) return;
        auto& provider = providers.emplace_back();
        provider.name = *name;
        load_provider(ctx, entry.value_field(f.path + "." + *name), provider);
    });
    if (providers.empty()) ctx.diag.error(f, "at least one provider is required");
}

}  // namespace turnout::config::detail
