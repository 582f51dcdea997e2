"""The Kubernetes manifests of deploy/kubernetes: rendered with `kubectl kustomize`, every object
validated against the Kubernetes 1.36 OpenAPI schemas (kubernetes-models, installed into
tests/deploy/node_modules by scripts/setup.sh), and checked for what the README promises."""
import json
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import DEPLOY, HERE, ROOT

KUSTOMIZATIONS = ["base", "overlays/servicemonitor", "overlays/without-user-namespaces", "overlays/worker-network"]


def render(path):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: scripts/setup.sh installs Debian's kubernetes-client"
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY / "kubernetes" / path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def validate(objects):
    assert (HERE / "node_modules" / "kubernetes-models").is_dir(), \
        "tests/deploy/node_modules is missing: scripts/setup.sh installs it (npm ci)"
    return subprocess.run(["node", str(HERE / "validate-manifests.mjs")], input=json.dumps(objects),
                          capture_output=True, text=True, timeout=120)


def by_kind(objects):
    return {o["kind"]: o for o in objects}


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(path):
    objects = render(path)

    result = validate(objects)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(objects)} valid, 0 invalid" in result.stdout


def test_the_validator_rejects_an_invalid_object():
    deployment = by_kind(render("base"))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["procMount"] = "Sometimes"

    result = validate([deployment])

    assert result.returncode == 1
    assert "containerPort must be integer" in result.stdout


def test_the_validator_refuses_a_kind_it_has_no_schema_for():
    result = validate([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}])

    assert result.returncode == 1
    assert "no schema for example.com/v1 Widget" in result.stdout


def test_the_base_has_every_object_the_service_needs():
    kinds = sorted(o["kind"] for o in render("base"))

    assert kinds == sorted(["ConfigMap", "Deployment", "Service", "PersistentVolumeClaim",
                            "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"])


def test_the_deployment_runs_two_probed_replicas_on_the_shared_volume():
    objects = by_kind(render("base"))
    deployment = objects["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config = objects["ConfigMap"]["data"]

    assert deployment["spec"]["replicas"] == 2
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/sys/healthcheck", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": int(config["PORT"])}]
    assert pod["terminationGracePeriodSeconds"] > int(config["SHUTDOWN_TIMEOUT"]) / 1000
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["envFrom"] == [{"configMapRef": {"name": objects["ConfigMap"]["metadata"]["name"]}}]
    assert pod["volumes"] == [{"name": "functions", "persistentVolumeClaim": {"claimName": "customcode-functions"}}]
    assert {"name": "functions", "mountPath": "/data"} in container["volumeMounts"]
    assert config["FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH"].startswith("/data/")
    assert objects["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_sandbox_gets_what_it_needs_and_nothing_more():
    pod = by_kind(render("base"))["Deployment"]["spec"]["template"]["spec"]
    security = pod["containers"][0]["securityContext"]

    assert pod["hostUsers"] is False
    assert security["procMount"] == "Unmasked"
    assert security["allowPrivilegeEscalation"] is False
    assert "privileged" not in security
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["SETUID", "SETGID", "SETFCAP", "KILL", "NET_BIND_SERVICE"]}


def test_without_user_namespaces_the_runtime_profiles_come_back():
    pod = by_kind(render("overlays/without-user-namespaces"))["Deployment"]["spec"]["template"]["spec"]
    security = pod["containers"][0]["securityContext"]

    assert "hostUsers" not in pod
    assert "procMount" not in security
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_worker_network_overlay_gives_pasta_the_tun_device_and_insists_on_isolation():
    objects = by_kind(render("overlays/worker-network"))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]

    assert {"name": "tun", "hostPath": {"path": "/dev/net/tun", "type": "CharDevice"}} in pod["volumes"]
    assert {"name": "tun", "mountPath": "/dev/net/tun"} in container["volumeMounts"]
    assert objects["ConfigMap"]["data"]["WORKER_NETWORK"] == "isolated"
    assert "WORKER_NETWORK" not in by_kind(render("base"))["ConfigMap"]["data"]


def test_service_hpa_pdb_and_network_policy_select_the_pods():
    objects = by_kind(render("base"))
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]

    service = objects["Service"]["spec"]
    assert service["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    assert service["selector"].items() <= labels.items()
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policy = objects["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"] == [{"from": [{"podSelector": {}}], "ports": [{"port": "http", "protocol": "TCP"}]}]


def test_the_service_monitor_scrapes_metrics():
    monitor = by_kind(render("overlays/servicemonitor"))["ServiceMonitor"]

    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]


def readme_settings():
    """The README's configuration table: {name: default} (defaults as the README writes them)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    settings = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        default = cells[1].strip("`")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            settings[name] = default
    return settings


def test_the_config_map_has_every_readme_setting_with_its_default():
    config = by_kind(render("base"))["ConfigMap"]["data"]
    settings = readme_settings()
    # Left unset on purpose (the kustomization says why): their defaults are lists or URLs
    # documented elsewhere, or derived from another setting.
    unset = {"PYTHON_BUILTIN_MODULES", "PYTHON_PACKAGES_WHITELIST_IMPORT", "PYTHON_API_URL",
             "NPM_CONFIG_REGISTRY", "NPM_CACHE_DIRECTORY", "PLAYGROUND_DIR", "SANDBOX_TEST_NO_NAMESPACES",
             "WORKER_CGROUPS_TEST_UNAVAILABLE",
             "WORKER_NETWORK", "WORKER_NETWORK_DENY", "WORKER_NETWORK_ALLOW"}
    # The container's own values (Containerfile): port 80, the volume's path.
    container = {"PORT": "80", "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": "/data/functions"}

    assert len(settings) > 25
    for name, default in settings.items():
        if name in unset:
            assert name not in config, name
            continue
        assert name in config, f"{name} is missing from the ConfigMap"
        expected = container.get(name, default)
        if name == "NODE_PATH_BINARY":
            expected = "/usr/bin/node"
        elif name == "PYTHON_PATH_BINARY":
            expected = "/usr/bin/python3"
        assert config[name] == expected, name
