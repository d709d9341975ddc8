// No Docker engine or cluster runs on the CI machines: the compose file, the Kubernetes
// manifests, the Grafana provisioning and the Dockerfile are read as files and checked against
// each other and against the config they ship (ports, probes, image names, secrets, mounts).

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "config/loader.hpp"

namespace turnout {
namespace {

namespace fs = std::filesystem;

std::string source_path(const std::string& relative) {
    return std::string(TURNOUT_SOURCE_DIR) + "/" + relative;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// "0.0.0.0:8080" -> 8080; -1 when there is no port.
int port_of(const std::string& address) {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string::npos) return -1;
    return std::stoi(address.substr(colon + 1));
}

std::string host_of(const std::string& address) { return address.substr(0, address.rfind(':')); }

/// Every Kubernetes object under deploy/k8s/, by kind (one of each kind here).
class K8s : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        objects_ = new std::map<std::string, YAML::Node>();
        for (const auto& entry : fs::directory_iterator(source_path("deploy/k8s"))) {
            if (entry.path().extension() != ".yaml") continue;
            for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
                if (!doc || !doc["kind"]) continue;
                const std::string kind = doc["kind"].as<std::string>();
                if (kind == "Kustomization") continue;
                ASSERT_FALSE(objects_->contains(kind)) << "two objects of kind " << kind;
                (*objects_)[kind] = doc;
            }
        }
    }
    static void TearDownTestSuite() {
        delete objects_;
        objects_ = nullptr;
    }

    static YAML::Node object(const std::string& kind) {
        const auto it = objects_->find(kind);
        if (it == objects_->end()) {
            ADD_FAILURE() << "deploy/k8s has no " << kind;
            return YAML::Node();
        }
        return it->second;
    }

    static YAML::Node container() {
        return object("Deployment")["spec"]["template"]["spec"]["containers"][0];
    }

    static std::shared_ptr<const config::Config> config() {
        const std::string text = object("ConfigMap")["data"]["turnout.yaml"].as<std::string>();
        const config::LoadResult result = config::load_config_string(
            text, "deploy/k8s/configmap.yaml:turnout.yaml", config::EnvPolicy::warn);
        for (const auto& error : result.errors) ADD_FAILURE() << error.text;
        return result.config;
    }

    /// A container port given by name or number, as its number.
    static int container_port(const YAML::Node& port) {
        for (const auto& p : container()["ports"]) {
            if (p["name"] && p["name"].as<std::string>() == port.as<std::string>()) {
                return p["containerPort"].as<int>();
            }
        }
        return port.as<int>();
    }

    static bool selects(const YAML::Node& selector, const YAML::Node& labels) {
        if (!selector || selector.size() == 0) return false;
        for (const auto& kv : selector) {
            const std::string key = kv.first.as<std::string>();
            if (!labels[key] || labels[key].as<std::string>() != kv.second.as<std::string>()) {
                return false;
            }
        }
        return true;
    }

    static inline std::map<std::string, YAML::Node>* objects_ = nullptr;
};

TEST_F(K8s, HasEveryObjectTheIssueAsksFor) {
    for (const char* kind : {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                             "HorizontalPodAutoscaler", "ServiceMonitor"}) {
        EXPECT_TRUE(objects_->contains(kind)) << kind;
    }
}

TEST_F(K8s, KustomizationListsEveryManifest) {
    const YAML::Node kustomization = YAML::LoadFile(source_path("deploy/k8s/kustomization.yaml"));
    std::set<std::string> listed;
    for (const auto& resource : kustomization["resources"])
        listed.insert(resource.as<std::string>());
    for (const auto& entry : fs::directory_iterator(source_path("deploy/k8s"))) {
        const std::string name = entry.path().filename().string();
        if (entry.path().extension() == ".yaml" && name != "kustomization.yaml") {
            EXPECT_TRUE(listed.contains(name)) << name << " missing from kustomization.yaml";
        }
    }
    for (const std::string& name : listed) {
        EXPECT_TRUE(fs::exists(source_path("deploy/k8s/" + name))) << name;
    }
}

TEST_F(K8s, ConfigMapHoldsAValidConfigListeningOnAllInterfaces) {
    const auto cfg = config();
    ASSERT_TRUE(cfg);
    EXPECT_EQ(port_of(cfg->listen), 8080);
    EXPECT_EQ(port_of(cfg->admin.listen), 9090);
    // Probes and scrapes come from outside the pod: loopback would fail them all.
    EXPECT_EQ(host_of(cfg->listen), "0.0.0.0");
    EXPECT_EQ(host_of(cfg->admin.listen), "0.0.0.0");
}

TEST_F(K8s, ContainerPortsAndProbesMatchTheConfig) {
    const auto cfg = config();
    ASSERT_TRUE(cfg);
    const YAML::Node c = container();
    EXPECT_EQ(container_port(YAML::Node("http")), port_of(cfg->listen));
    EXPECT_EQ(container_port(YAML::Node("admin")), port_of(cfg->admin.listen));

    const YAML::Node liveness = c["livenessProbe"]["httpGet"];
    const YAML::Node readiness = c["readinessProbe"]["httpGet"];
    ASSERT_TRUE(liveness && readiness);
    EXPECT_EQ(liveness["path"].as<std::string>(), "/healthz");
    EXPECT_EQ(readiness["path"].as<std::string>(), "/readyz");
    EXPECT_EQ(container_port(liveness["port"]), port_of(cfg->admin.listen));
    EXPECT_EQ(container_port(readiness["port"]), port_of(cfg->admin.listen));
}

TEST_F(K8s, ConfigIsMountedWhereTheArgumentsPointAndStateIsWritable) {
    const auto cfg = config();
    ASSERT_TRUE(cfg);
    const YAML::Node pod = object("Deployment")["spec"]["template"]["spec"];
    const YAML::Node c = container();
    std::string config_arg;
    const YAML::Node args = c["args"];
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i].as<std::string>() == "--config") config_arg = args[i + 1].as<std::string>();
    }
    ASSERT_FALSE(config_arg.empty()) << "no --config in the container's args";

    std::map<std::string, YAML::Node> volumes;
    for (const YAML::Node& v : pod["volumes"]) volumes.emplace(v["name"].as<std::string>(), v);
    bool config_mounted = false;
    bool state_writable = false;
    for (const auto& mount : c["volumeMounts"]) {
        const std::string path = mount["mountPath"].as<std::string>();
        const YAML::Node volume = volumes[mount["name"].as<std::string>()];
        ASSERT_TRUE(volume) << "volumeMount of an undeclared volume " << mount["name"];
        if (volume["configMap"] && config_arg.starts_with(path + "/")) {
            EXPECT_EQ(volume["configMap"]["name"].as<std::string>(),
                      object("ConfigMap")["metadata"]["name"].as<std::string>());
            EXPECT_EQ(config_arg.substr(path.size() + 1), "turnout.yaml");
            config_mounted = true;
        }
        const bool read_only = mount["readOnly"] && mount["readOnly"].as<bool>();
        if (!read_only && (cfg->state.path == path || cfg->state.path.starts_with(path + "/"))) {
            state_writable = true;
        }
    }
    EXPECT_TRUE(config_mounted) << config_arg << " is not on the ConfigMap's volume";
    // The root filesystem is read-only: state.path must be on a writable volume.
    EXPECT_TRUE(state_writable) << cfg->state.path;
}

TEST_F(K8s, EverySecretTheConfigNamesComesFromASecretRef) {
    const auto cfg = config();
    ASSERT_TRUE(cfg);
    std::set<std::string> needed;
    if (!cfg->admin.token_env.empty()) needed.insert(cfg->admin.token_env);
    for (const auto& key : cfg->keys) needed.insert(key.key_env);
    for (const auto& provider : cfg->providers) {
        if (!provider.api_key_env.empty()) needed.insert(provider.api_key_env);
    }
    EXPECT_FALSE(needed.empty());
    std::map<std::string, YAML::Node> env;
    for (const YAML::Node& var : container()["env"])
        env.emplace(var["name"].as<std::string>(), var);
    for (const std::string& name : needed) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(env.contains(name)) << "`serve` refuses to start without it";
        EXPECT_FALSE(env[name]["value"]) << "a literal secret in the manifest";
        EXPECT_TRUE(env[name]["valueFrom"]["secretKeyRef"]["name"]);
    }
}

TEST_F(K8s, ServicePdbHpaAndServiceMonitorSelectThePods) {
    const YAML::Node deployment = object("Deployment");
    const YAML::Node pod_labels = deployment["spec"]["template"]["metadata"]["labels"];
    EXPECT_TRUE(selects(deployment["spec"]["selector"]["matchLabels"], pod_labels));

    const YAML::Node service = object("Service");
    EXPECT_TRUE(selects(service["spec"]["selector"], pod_labels));
    std::map<std::string, int> service_target;  // service port name -> container port
    for (const auto& port : service["spec"]["ports"]) {
        const int target = container_port(port["targetPort"]);
        EXPECT_EQ(port["port"].as<int>(), target) << "keep the pod's port numbers";
        service_target[port["name"].as<std::string>()] = target;
    }
    EXPECT_EQ(service_target["http"], 8080);
    EXPECT_EQ(service_target["admin"], 9090);

    EXPECT_TRUE(
        selects(object("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels));

    const YAML::Node target = object("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"];
    EXPECT_EQ(target["kind"].as<std::string>(), "Deployment");
    EXPECT_EQ(target["name"].as<std::string>(), deployment["metadata"]["name"].as<std::string>());
    const YAML::Node hpa = object("HorizontalPodAutoscaler")["spec"];
    EXPECT_LE(hpa["minReplicas"].as<int>(), hpa["maxReplicas"].as<int>());
    // A PDB with minAvailable 1 would block every drain with a single replica.
    EXPECT_GE(hpa["minReplicas"].as<int>(), 2);

    const YAML::Node monitor = object("ServiceMonitor")["spec"];
    EXPECT_TRUE(selects(monitor["selector"]["matchLabels"], service["metadata"]["labels"]));
    const YAML::Node endpoint = monitor["endpoints"][0];
    EXPECT_EQ(service_target[endpoint["port"].as<std::string>()], 9090);
    EXPECT_EQ(endpoint["path"].as<std::string>(), "/metrics");
}

TEST_F(K8s, ImageAndUserMatchComposeDockerfileAndProjectVersion) {
    const std::string image = container()["image"].as<std::string>();
    const YAML::Node compose = YAML::LoadFile(source_path("deploy/docker-compose.yml"));
    EXPECT_EQ(compose["services"]["turnout"]["image"].as<std::string>(), image);

    std::smatch version;
    const std::string cmake = read_file(source_path("CMakeLists.txt"));
    ASSERT_TRUE(
        std::regex_search(cmake, version, std::regex(R"(project\(turnout VERSION ([0-9.]+))")));
    EXPECT_EQ(image, "turnout:" + version[1].str());

    std::smatch uid;
    const std::string dockerfile = read_file(source_path("Dockerfile"));
    ASSERT_TRUE(std::regex_search(dockerfile, uid, std::regex(R"(--uid ([0-9]+))")));
    const YAML::Node security = object("Deployment")["spec"]["template"]["spec"]["securityContext"];
    EXPECT_EQ(security["runAsUser"].as<std::string>(), uid[1].str());
    EXPECT_TRUE(security["runAsNonRoot"].as<bool>());
}

// --- docker compose + Prometheus + Grafana ---------------------------------------------------

class Compose : public ::testing::Test {
  protected:
    void SetUp() override {
        compose_ = YAML::LoadFile(source_path("deploy/docker-compose.yml"));
        services_ = compose_["services"];
        ASSERT_TRUE(services_["turnout"] && services_["prometheus"] && services_["grafana"]);
    }

    /// The value after `flag` in the turnout service's command.
    std::string turnout_flag(const std::string& flag) const {
        const YAML::Node command = services_["turnout"]["command"];
        for (std::size_t i = 0; i + 1 < command.size(); ++i) {
            if (command[i].as<std::string>() == flag) return command[i + 1].as<std::string>();
        }
        return "";
    }

    /// Host file (relative to deploy/) -> container path, for one service's bind mounts.
    std::map<std::string, std::string> mounts(const std::string& service) const {
        std::map<std::string, std::string> out;
        for (const auto& volume : services_[service]["volumes"]) {
            const std::string spec = volume.as<std::string>();
            if (!spec.starts_with("./")) continue;
            const std::size_t colon = spec.find(':');
            std::string target = spec.substr(colon + 1);
            target = target.substr(0, target.find(':'));
            out[spec.substr(2, colon - 2)] = target;
        }
        return out;
    }

    std::set<int> published_container_ports(const std::string& service) const {
        std::set<int> ports;
        for (const auto& port : services_[service]["ports"]) {
            const std::string spec = port.as<std::string>();
            ports.insert(std::stoi(spec.substr(spec.rfind(':') + 1)));
        }
        return ports;
    }

    YAML::Node compose_;
    YAML::Node services_;
};

TEST_F(Compose, TurnoutRunsTheDemoBuiltFromTheDockerfile) {
    const YAML::Node turnout = services_["turnout"];
    EXPECT_EQ(turnout["command"][0].as<std::string>(), "demo");
    const fs::path context =
        fs::path(source_path("deploy")) / turnout["build"]["context"].as<std::string>();
    EXPECT_TRUE(fs::exists(context / turnout["build"]["dockerfile"].as<std::string>()));
    EXPECT_EQ(fs::weakly_canonical(context), fs::weakly_canonical(source_path("")));
}

TEST_F(Compose, TurnoutListensOnAllInterfacesAndPublishesBothPorts) {
    const std::string api = turnout_flag("--listen");
    const std::string admin = turnout_flag("--admin-listen");
    EXPECT_EQ(host_of(api), "0.0.0.0");
    EXPECT_EQ(host_of(admin), "0.0.0.0");
    EXPECT_EQ(port_of(api), 8080);
    EXPECT_EQ(port_of(admin), 9090);
    const std::set<int> published = published_container_ports("turnout");
    EXPECT_TRUE(published.contains(port_of(api)));
    EXPECT_TRUE(published.contains(port_of(admin)));
}

TEST_F(Compose, PrometheusScrapesTurnoutsAdminPortWithTheAlertRules) {
    const auto files = mounts("prometheus");
    ASSERT_TRUE(files.contains("prometheus/prometheus.yml"));
    std::string config_flag;
    for (const auto& arg : services_["prometheus"]["command"]) {
        const std::string text = arg.as<std::string>();
        if (text.starts_with("--config.file=")) config_flag = text.substr(14);
    }
    EXPECT_EQ(config_flag, files.at("prometheus/prometheus.yml"));

    const YAML::Node prometheus = YAML::LoadFile(source_path("deploy/prometheus/prometheus.yml"));
    const std::string container_dir = fs::path(config_flag).parent_path().string();
    for (const auto& rule_file : prometheus["rule_files"]) {
        const std::string in_container = container_dir + "/" + rule_file.as<std::string>();
        bool mounted = false;
        for (const auto& [host, target] : files) {
            if (target == in_container) {
                mounted = true;
                EXPECT_TRUE(fs::exists(source_path("deploy/" + host))) << host;
            }
        }
        EXPECT_TRUE(mounted) << in_container << " is not mounted";
    }

    const YAML::Node job = prometheus["scrape_configs"][0];
    EXPECT_EQ(job["metrics_path"].as<std::string>(), "/metrics");
    const std::string target = job["static_configs"][0]["targets"][0].as<std::string>();
    EXPECT_EQ(host_of(target), "turnout");
    EXPECT_EQ(port_of(target), port_of(turnout_flag("--admin-listen")));
}

TEST_F(Compose, GrafanaIsProvisionedWithTheDatasourceAndTheDashboard) {
    const auto files = mounts("grafana");
    ASSERT_TRUE(files.contains("grafana/dashboard.json"));
    ASSERT_TRUE(files.contains("grafana/provisioning/dashboards"));
    ASSERT_TRUE(files.contains("grafana/provisioning/datasources"));
    EXPECT_EQ(files.at("grafana/provisioning/dashboards"), "/etc/grafana/provisioning/dashboards");
    EXPECT_EQ(files.at("grafana/provisioning/datasources"),
              "/etc/grafana/provisioning/datasources");

    const YAML::Node providers =
        YAML::LoadFile(source_path("deploy/grafana/provisioning/dashboards/turnout.yml"));
    const std::string dir = providers["providers"][0]["options"]["path"].as<std::string>();
    EXPECT_EQ(fs::path(files.at("grafana/dashboard.json")).parent_path().string(), dir);

    const YAML::Node datasources =
        YAML::LoadFile(source_path("deploy/grafana/provisioning/datasources/prometheus.yml"));
    const YAML::Node ds = datasources["datasources"][0];
    EXPECT_EQ(ds["type"].as<std::string>(), "prometheus");
    EXPECT_TRUE(ds["isDefault"].as<bool>());
    const std::string url = ds["url"].as<std::string>();
    EXPECT_EQ(url, "http://prometheus:9090");  // the compose service, Prometheus' own port
    EXPECT_TRUE(services_["prometheus"]);

    rapidjson::Document dashboard;
    dashboard.Parse(read_file(source_path("deploy/grafana/dashboard.json")).c_str());
    ASSERT_FALSE(dashboard.HasParseError());
    // Panels use the ${datasource} variable, which must be a prometheus datasource picker.
    bool has_variable = false;
    for (const auto& variable : dashboard["templating"]["list"].GetArray()) {
        if (std::string(variable["name"].GetString()) == "datasource") {
            EXPECT_STREQ(variable["type"].GetString(), "datasource");
            EXPECT_STREQ(variable["query"].GetString(), "prometheus");
            has_variable = true;
        }
    }
    EXPECT_TRUE(has_variable);
    for (const auto& panel : dashboard["panels"].GetArray()) {
        if (std::string(panel["type"].GetString()) == "row") continue;
        EXPECT_STREQ(panel["datasource"]["uid"].GetString(), "${datasource}")
            << panel["title"].GetString();
    }
}

// --- Dockerfile, README, example config ----------------------------------------------------

TEST(Dockerfile, InstallsThroughTheReadmesScript) {
    const std::string readme = read_file(source_path("README.md"));
    const std::string dockerfile = read_file(source_path("Dockerfile"));
    ASSERT_NE(readme.find("./deploy/install-deps.sh"), std::string::npos);
    ASSERT_NE(readme.find("./deploy/build.sh release"), std::string::npos);

    // Split into stages; every stage installs packages only through the script.
    std::vector<std::string> stages;
    std::istringstream lines(dockerfile);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with("FROM ")) stages.emplace_back();
        if (!stages.empty()) stages.back() += line + "\n";
    }
    ASSERT_GE(stages.size(), 2u) << "multi-stage";
    EXPECT_NE(stages.front().find("debian:bookworm"), std::string::npos);
    EXPECT_NE(stages.front().find("./deploy/install-deps.sh"), std::string::npos);
    EXPECT_NE(stages.front().find("./deploy/build.sh release"), std::string::npos);
    EXPECT_NE(stages.back().find("install-deps.sh --runtime"), std::string::npos);
    EXPECT_EQ(dockerfile.find("apt-get install"), std::string::npos)
        << "packages must come from deploy/install-deps.sh";

    EXPECT_TRUE(std::regex_search(stages.back(), std::regex(R"(\nUSER +[a-z])")))
        << "runs as a named non-root user";
    EXPECT_TRUE(std::regex_search(stages.back(), std::regex(R"(HEALTHCHECK[^\n]*\n?[^\n]*9090)")));
    EXPECT_NE(stages.back().find("/healthz"), std::string::npos);
    EXPECT_NE(stages.back().find("EXPOSE 8080 9090"), std::string::npos);
}

TEST(ExampleConfig, IsValidForTurnoutCheck) {
    const config::LoadResult result = config::load_config_file(
        source_path("deploy/examples/turnout.yaml"), config::EnvPolicy::warn);
    for (const auto& error : result.errors) ADD_FAILURE() << error.text;
    ASSERT_TRUE(result.config);
    EXPECT_EQ(port_of(result.config->listen), 8080);
    EXPECT_EQ(port_of(result.config->admin.listen), 9090);
}

}  // namespace
}  // namespace turnout
