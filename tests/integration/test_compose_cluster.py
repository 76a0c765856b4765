"""compose.cluster.yaml, without a container engine: two replicas on the compose's own
PostgreSQL and object store behind a balancer that names both, only loopback published,
every service started after what it needs is healthy, no secret written in the file, and the
balancer's nginx configuration accepted by nginx itself."""

import re
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from bodega.config import load_settings
from tests.support.cluster_compose import (
    REPLICAS,
    REQUIRED,
    balancer_config,
    environment,
    services,
)
from tests.support.image import final_stage, image_environment
from tests.support.nginx import find_nginx, main_config


def image_port() -> int:
    """The port bodega listens on inside its image (the Dockerfile's BODEGA_PORT)."""
    return int(image_environment()["BODEGA_PORT"])


def test_the_cluster_has_two_replicas_a_database_an_object_store_and_a_balancer() -> None:
    assert set(services()) == {*REPLICAS, "postgres", "seaweedfs", "balancer"}
    for replica in REPLICAS:
        assert services()[replica]["build"] == "."  # the image compose.yaml builds
    assert services()["postgres"]["image"].startswith("postgres:")
    assert services()["seaweedfs"]["image"].startswith("chrislusf/seaweedfs:")
    for service in services().values():
        assert "image" not in service or not service["image"].endswith(":latest")


def test_every_published_port_is_on_loopback_and_only_the_balancer_publishes() -> None:
    published = {name: service.get("ports", []) for name, service in services().items()}
    assert {name for name, ports in published.items() if ports} == {"balancer"}
    for port in published["balancer"]:
        assert str(port).startswith("127.0.0.1:")


def test_the_replicas_use_the_composes_own_postgresql_with_the_password_out_of_the_url() -> None:
    database = environment("postgres")
    for replica in REPLICAS:
        url = urllib.parse.urlsplit(environment(replica)["BODEGA_DATABASE"])
        assert url.scheme == "postgresql"
        assert url.hostname == "postgres"
        assert url.port == 5432
        assert url.password is None
        assert url.username == database["POSTGRES_USER"]
        assert url.path == "/" + database["POSTGRES_DB"]
        assert environment(replica)["PGPASSWORD"] == database["POSTGRES_PASSWORD"]


def test_the_replicas_use_the_composes_own_bucket_with_its_credentials() -> None:
    store = environment("seaweedfs")
    for replica in REPLICAS:
        env = environment(replica)
        bucket = urllib.parse.urlsplit(env["BODEGA_BLOB_STORE"])
        assert (bucket.scheme, bucket.hostname) == ("s3", store["S3_BUCKET"])
        endpoint = urllib.parse.urlsplit(env["AWS_ENDPOINT_URL"])
        assert (endpoint.hostname, endpoint.port) == ("seaweedfs", 8333)
        assert env["AWS_ACCESS_KEY_ID"] == store["AWS_ACCESS_KEY_ID"]
        assert env["AWS_SECRET_ACCESS_KEY"] == store["AWS_SECRET_ACCESS_KEY"]
        assert env["AWS_DEFAULT_REGION"]


def test_the_replicas_settings_are_ones_bodega_accepts() -> None:
    for replica in REPLICAS:
        settings = load_settings({"upstream": "http://127.0.0.1:9/simple/"}, environment(replica))
        assert settings.database.startswith("postgresql://")
        assert settings.blob_store.startswith("s3://")


def test_no_secret_is_written_in_the_file() -> None:
    secrets = {
        "postgres": ["POSTGRES_PASSWORD"],
        "seaweedfs": ["AWS_SECRET_ACCESS_KEY"],
        **{replica: ["PGPASSWORD", "AWS_SECRET_ACCESS_KEY"] for replica in REPLICAS},
    }
    for service, names in secrets.items():
        for name in names:
            assert REQUIRED.match(environment(service)[name]), (service, name)


def test_each_service_starts_once_what_it_needs_is_healthy() -> None:
    for replica in REPLICAS:
        assert services()[replica]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "seaweedfs": {"condition": "service_healthy"},
        }
    assert services()["balancer"]["depends_on"] == {
        replica: {"condition": "service_healthy"} for replica in REPLICAS
    }
    for name in ("postgres", "seaweedfs", "balancer"):
        assert services()[name]["healthcheck"]["test"][0] == "CMD"
    # The replicas' healthcheck is their image's.
    assert any(step["instruction"] == "HEALTHCHECK" for step in final_stage())


def test_the_balancer_sends_to_both_replicas_on_the_port_they_listen_on() -> None:
    config = balancer_config()
    upstream = re.search(r"upstream bodega \{(.*?)\}", config, re.DOTALL)
    assert upstream is not None
    servers = re.findall(r"^\s*server ([\w.-]+):(\d+)", upstream.group(1), re.MULTILINE)
    assert sorted(servers) == [(replica, str(image_port())) for replica in REPLICAS]
    (published,) = services()["balancer"]["ports"]
    listen = re.search(r"^\s*listen (\d+);", config, re.MULTILINE)
    assert listen is not None
    assert published.rsplit(":", 1)[1] == listen.group(1)
    assert "proxy_pass http://bodega;" in config
    # Streams a cold file as it arrives, and never sends an upload twice.
    assert "proxy_buffering off;" in config
    assert "non_idempotent" not in config
    mounted = services()["balancer"]["configs"]
    assert mounted == [{"source": "balancer", "target": "/etc/nginx/conf.d/default.conf"}]


def test_nginx_accepts_the_balancers_configuration(tmp_path: Path) -> None:
    nginx = find_nginx()
    if nginx is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    # The replicas' names resolve on the compose network only; here, loopback stands in.
    config = balancer_config()
    for replica in REPLICAS:
        config = config.replace(f"server {replica}:", "server 127.0.0.1:")
    (tmp_path / "default.conf").write_text(config)
    main = tmp_path / "nginx.conf"
    main.write_text(main_config(tmp_path, tmp_path / "default.conf"))
    result = subprocess.run(
        [str(nginx), "-t", "-q", "-p", str(tmp_path), "-c", str(main)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stderr) == (0, "")
