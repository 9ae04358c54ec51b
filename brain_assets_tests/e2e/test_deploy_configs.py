"""The deployment files under deploy/ and the root dagster.yaml, checked without a cluster.

What is checked:

- Every ``dagster.yaml`` (root, deploy/k8s, deploy/celery) loads through Dagster's own instance
  loader (``dagster_instance_config``: top-level keys, types, the one-storage rule) and is then
  processed against ``dagster_instance_config_schema()`` with its environment variables set, so
  every ``env:`` reference resolves; with ``DAGSTER_PG_URL`` unset the same processing fails,
  which shows that the storage URL comes from the environment and nothing else.
- The storage section is PostgreSQL through ``postgres_url: {env: DAGSTER_PG_URL}``, and no file
  holds a literal password (no ``user:password@`` URL, no ``password:`` with a literal value).
- Run coordinators and launchers whose class ships with Dagster (``QueuedRunCoordinator``) or
  with the project (``WatchedRunLauncher``) are imported from the module the file names and their
  ``config`` block is processed against the class's own ``config_type()``.
- ``K8sRunLauncher`` (dagster-k8s) and the Celery executor (dagster-celery) are not installed:
  for them the module and class names are asserted, and their config is processed against a
  schema written in this file from the packages' documented fields (dagster-k8s
  ``DagsterK8sJobConfig.config_type_run_launcher``, dagster-celery ``CELERY_CONFIG``), which
  catches unknown keys, wrong types and missing required keys, but not a field that a newer
  release added, renamed or removed.
- The Helm values parse as YAML, use only top-level keys of the chart's values schema, run the
  ``brain_assets.definitions`` module in a user deployment, pick ``K8sRunLauncher``, disable the
  bundled PostgreSQL, select the psycopg2 driver and take ``DATABASE_DSN`` from a Secret.

What cannot be checked here: that ``helm template`` renders with the chart (no helm binary, no
chart download), that the Kubernetes objects are accepted by an API server, that the image
exists, that Secrets, the service account or RBAC exist in the cluster, that the Celery broker
is reachable, and that dagster-k8s or dagster-celery accept the config at import time in the
release a deployment installs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import (
    Array,
    Field,
    Noneable,
    Permissive,
    Shape,
    StringSource,
    process_config,
)
from dagster._core.execution.retries import get_retries_config
from dagster._core.instance.config import dagster_instance_config, dagster_instance_config_schema
from dagster._serdes import ConfigurableClassData
from dagster._serdes.config_class import class_from_code_pointer

from brain_assets_tests.paths import REPO

ROOT = REPO
DEPLOY = ROOT / "deploy"

INSTANCE_FILES = {
    "root": ROOT / "dagster.yaml",
    "k8s": DEPLOY / "k8s" / "dagster.yaml",
    "celery": DEPLOY / "celery" / "dagster.yaml",
}

PG_URL = "postgresql+psycopg2://dagster:not-a-real-password@db.example.internal:5432/huracan"
ENV = {
    "DAGSTER_PG_URL": PG_URL,
    "BRAIN_MAX_CONCURRENT_RUNS": "2",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "brain-dagster-instance",
    "DAGSTER_K8S_JOB_NAMESPACE": "brain",
    "DAGSTER_CELERY_BROKER_URL": "redis://broker.example.internal:6379/0",
    "DAGSTER_CELERY_BACKEND_URL": "redis://broker.example.internal:6379/1",
}

# dagster-k8s: DagsterK8sJobConfig.config_type_run_launcher() (job + container + launcher fields).
K8S_RUN_LAUNCHER_SCHEMA = {
    "job_image": Field(Noneable(StringSource), is_required=False),
    "image_pull_policy": Field(Noneable(StringSource), is_required=False),
    "image_pull_secrets": Field(Noneable(Array(Shape({"name": StringSource}))), is_required=False),
    "service_account_name": Field(Noneable(StringSource), is_required=False),
    "env_config_maps": Field(Noneable(Array(StringSource)), is_required=False),
    "env_secrets": Field(Noneable(Array(StringSource)), is_required=False),
    "env_vars": Field(Noneable(Array(str)), is_required=False),
    "volume_mounts": Field(Array(Permissive({"name": StringSource})), is_required=False),
    "volumes": Field(Array(Permissive({"name": str})), is_required=False),
    "labels": Field(dict, is_required=False),
    "resources": Field(
        Noneable(
            {"limits": Field(dict, is_required=False), "requests": Field(dict, is_required=False)}
        ),
        is_required=False,
    ),
    "scheduler_name": Field(Noneable(StringSource), is_required=False),
    "security_context": Field(dict, is_required=False),
    "instance_config_map": Field(StringSource, is_required=True),
    "postgres_password_secret": Field(StringSource, is_required=False),
    "dagster_home": Field(StringSource, is_required=False),
    "load_incluster_config": Field(bool, is_required=False),
    "kubeconfig_file": Field(Noneable(str), is_required=False),
    "fail_pod_on_run_failure": Field(bool, is_required=False),
    "run_k8s_config": Field(Permissive(), is_required=False),
    "job_namespace": Field(StringSource, is_required=False),
    "only_allow_user_defined_k8s_config_fields": Field(Permissive(), is_required=False),
    "only_allow_user_defined_env_vars": Field(Array(str), is_required=False),
}

# dagster-celery: dagster_celery.executor.CELERY_CONFIG.
CELERY_EXECUTOR_SCHEMA = {
    "broker": Field(Noneable(StringSource), is_required=False),
    "backend": Field(Noneable(StringSource), is_required=False),
    "include": Field([str], is_required=False),
    "config_source": Field(Noneable(Permissive()), is_required=False),
    "retries": get_retries_config(),
}

# Top-level keys of the chart's values (schema/charts/dagster/values.py, DagsterHelmValues).
HELM_TOP_LEVEL_KEYS = {
    "dagsterWebserver",
    "dagster-user-deployments",
    "postgresql",
    "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret",
    "rabbitmq",
    "redis",
    "flower",
    "ingress",
    "imagePullSecrets",
    "computeLogManager",
    "scheduler",
    "runLauncher",
    "pythonLogs",
    "dagsterDaemon",
    "busybox",
    "migrate",
    "telemetry",
    "serviceAccount",
    "global",
    "retention",
    "concurrency",
    "additionalInstanceConfig",
}
HELM_USER_DEPLOYMENT_KEYS = {
    "name",
    "image",
    "port",
    "dagsterApiGrpcArgs",
    "codeServerArgs",
    "includeConfigInLaunchedRuns",
    "env",
    "envConfigMaps",
    "envSecrets",
    "annotations",
    "nodeSelector",
    "affinity",
    "tolerations",
    "podSecurityContext",
    "securityContext",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "labels",
    "volumeMounts",
    "volumes",
    "schedulerName",
}
HELM_K8S_RUN_LAUNCHER_KEYS = {
    "image",
    "imagePullPolicy",
    "jobNamespace",
    "loadInclusterConfig",
    "kubeconfigFile",
    "envConfigMaps",
    "envSecrets",
    "envVars",
    "volumeMounts",
    "volumes",
    "labels",
    "failPodOnRunFailure",
    "resources",
    "schedulerName",
    "securityContext",
    "runK8sConfig",
}

URI_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@", re.IGNORECASE)


@pytest.fixture
def deploy_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return ENV


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def assert_no_literal_password(node: Any, where: str) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if "password" in str(key).lower() and isinstance(value, str):
                assert value == "", f"{where}.{key} holds a literal password"
            assert_no_literal_password(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            assert_no_literal_password(item, f"{where}[{index}]")
    elif isinstance(node, str):
        assert not URI_WITH_PASSWORD.search(node), f"{where} holds a URL with a password"


def process_or_fail(schema: object, value: Mapping[str, Any], what: str) -> Any:
    result = process_config(schema, value)
    assert result.success, f"{what}: {[error.message for error in result.errors or []]}"
    return result.value


@pytest.mark.parametrize("name", sorted(INSTANCE_FILES))
def test_instance_config_validates_against_dagster_schema(
    name: str, deploy_env: dict[str, str]
) -> None:
    path = INSTANCE_FILES[name]
    _, custom_instance_class = dagster_instance_config(str(path.parent), config_filename=path.name)
    assert custom_instance_class is None
    processed = process_or_fail(dagster_instance_config_schema(), load(path), name)
    assert processed["storage"]["postgres"]["postgres_url"] == PG_URL


@pytest.mark.parametrize("name", sorted(INSTANCE_FILES))
def test_storage_comes_from_the_environment_only(
    name: str, deploy_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = load(INSTANCE_FILES[name])
    assert raw["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert_no_literal_password(raw, name)
    assert not URI_WITH_PASSWORD.search(INSTANCE_FILES[name].read_text(encoding="utf-8"))

    monkeypatch.delenv("DAGSTER_PG_URL")
    assert not process_config(dagster_instance_config_schema(), raw).success


@pytest.mark.parametrize("name", sorted(INSTANCE_FILES))
def test_dagster_classes_load_and_accept_their_config(
    name: str, deploy_env: dict[str, str]
) -> None:
    raw = load(INSTANCE_FILES[name])
    checked = 0
    for section in ("run_coordinator", "run_launcher", "scheduler", "compute_logs"):
        if section not in raw:
            continue
        data = ConfigurableClassData(
            raw[section]["module"],
            raw[section]["class"],
            yaml.safe_dump(raw[section].get("config") or {}),
        )
        if not data.module_name.startswith(("dagster.", "dagster_postgres", "brain_assets.")):
            continue  # classes from uninstalled packages are checked in their own tests
        klass = class_from_code_pointer(data.module_name, data.class_name)
        process_or_fail(klass.config_type(), data.config_dict, f"{name}.{section}")  # type: ignore[attr-defined]
        checked += 1
    assert checked >= 1


def test_k8s_instance_uses_the_k8s_run_launcher_with_documented_fields(
    deploy_env: dict[str, str],
) -> None:
    launcher = load(INSTANCE_FILES["k8s"])["run_launcher"]
    assert launcher["module"] in ("dagster_k8s", "dagster_k8s.launcher")
    assert launcher["class"] == "K8sRunLauncher"
    config = launcher["config"]
    assert set(config) <= set(K8S_RUN_LAUNCHER_SCHEMA)
    value = process_or_fail(K8S_RUN_LAUNCHER_SCHEMA, config, "K8sRunLauncher")
    assert value["instance_config_map"] == ENV["DAGSTER_K8S_INSTANCE_CONFIG_MAP"]
    assert value["job_namespace"] == ENV["DAGSTER_K8S_JOB_NAMESPACE"]
    assert "brain-database" in value["env_secrets"]


def test_celery_worker_config_takes_the_broker_from_the_environment(
    deploy_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = load(DEPLOY / "celery" / "worker.yaml")
    assert set(raw) == {"execution"}
    # The same block under the CLI's key and under run config's key (see the file's comment).
    assert raw["execution"]["celery"] == raw["execution"]["config"]
    config = raw["execution"]["celery"]
    assert set(config) <= set(CELERY_EXECUTOR_SCHEMA)
    assert config["broker"] == {"env": "DAGSTER_CELERY_BROKER_URL"}
    assert_no_literal_password(raw, "worker.yaml")
    value = process_or_fail(CELERY_EXECUTOR_SCHEMA, config, "celery_executor")
    assert value["broker"] == ENV["DAGSTER_CELERY_BROKER_URL"]
    assert value["backend"] == ENV["DAGSTER_CELERY_BACKEND_URL"]
    assert "brain_assets.definitions" in value["include"]

    monkeypatch.delenv("DAGSTER_CELERY_BROKER_URL")
    assert not process_config(CELERY_EXECUTOR_SCHEMA, config).success


def test_helm_values_run_the_brain_code_location() -> None:
    values = load(DEPLOY / "k8s" / "values.yaml")
    assert set(values) <= HELM_TOP_LEVEL_KEYS
    assert_no_literal_password(values, "values")

    user = values["dagster-user-deployments"]
    assert user["enabled"] is True
    (deployment,) = user["deployments"]
    assert set(deployment) <= HELM_USER_DEPLOYMENT_KEYS
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == "brain_assets.definitions"
    assert {"repository", "tag"} <= set(deployment["image"])
    env = {item["name"]: item for item in deployment["env"]}
    assert env["DATABASE_DSN"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_DSN"
    assert "value" not in env["DATABASE_DSN"]

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert set(launcher["config"]) == {"k8sRunLauncher"}
    k8s = launcher["config"]["k8sRunLauncher"]
    assert set(k8s) <= HELM_K8S_RUN_LAUNCHER_KEYS
    assert {"name": "brain-database"} in k8s["envSecrets"]

    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False
    assert postgresql["postgresqlHost"]
    assert postgresql["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]


def test_deploy_readmes_name_the_driver_and_the_executors() -> None:
    overview = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "postgresql+psycopg2://" in overview
    assert "DATABASE_DSN" in overview
    assert "DAGSTER_PG_URL" in overview
    assert "k8s_job_executor" in (DEPLOY / "k8s" / "README.md").read_text(encoding="utf-8")
    assert "celery_executor" in (DEPLOY / "celery" / "README.md").read_text(encoding="utf-8")
