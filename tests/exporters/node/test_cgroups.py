"""The cgroups collector on checked-in cgroup trees (v2 under kubelet, Docker and a host without
PSI; v1 with a hybrid unified tree): exact expositions, values by hand, identities, bounds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from redline.exporters.node import cgroups
from redline.exporters.node.collectors import COLLECTORS, NodeCollector, Roots, collector_list
from tests.conftest import promtool_check_metrics

FIXTURES = Path(__file__).parent / "fixtures" / "cgroups"
TREES = ["cgroupv2-kubelet", "cgroupv2-docker", "cgroupv2-nopsi", "cgroupv1"]
POD = "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
APP, PAUSE, NOFILES, DOCKER = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32
KUBELET_POD = ("/kubepods.slice/kubepods-burstable.slice/"
               f"kubepods-burstable-pod{POD.replace('-', '_')}.slice")


def roots(tree: Path | str, **bounds: int) -> Roots:
    base = FIXTURES / tree if isinstance(tree, str) else tree
    return Roots(str(base / "proc"), str(base / "sys"), str(base / "root"),
                 cgroupfs=str(base / "cgroup"), **bounds)  # type: ignore[arg-type]


def registry_of(tree: Path | str, **bounds: int) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(roots(tree, **bounds), ["cgroups"]))
    return registry


def exposition(tree: str) -> str:
    text = generate_latest(registry_of(tree)).decode()
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith("node_scrape_collector_duration_seconds{")) + "\n"


@pytest.mark.parametrize("tree", TREES)
def test_expositions_are_exact(tree: str) -> None:
    text = exposition(tree)
    assert text == (FIXTURES / f"{tree}.prom").read_text()
    assert 'node_scrape_collector_success{collector="cgroups"} 1.0' in text
    promtool_check_metrics(text.encode())


def test_kubelet_layout_values_by_hand() -> None:
    get = registry_of("cgroupv2-kubelet").get_sample_value
    app = {"id": f"{KUBELET_POD}/cri-containerd-{APP}.scope", "namespace": "shop",
           "pod": "shop-7c9d8f6b5-x2x4q", "container": "app"}
    assert get("container_cpu_usage_seconds_total", app) == 29.0  # usage_usec 29000000
    assert get("container_cpu_user_seconds_total", app) == 19.5
    assert get("container_cpu_cfs_periods_total", app) == 1000
    assert get("container_cpu_cfs_throttled_periods_total", app) == 250
    assert get("container_cpu_cfs_throttled_seconds_total", app) == 12.5  # throttled_usec
    assert get("container_spec_cpu_quota", app) == 50000  # microseconds, as cAdvisor
    assert get("container_spec_cpu_period", app) == 100000
    assert get("container_memory_usage_bytes", app) == 299_000_000
    # working set = memory.current - inactive_file
    assert get("container_memory_working_set_bytes", app) == 299_000_000 - 20_000_000
    assert get("container_memory_rss", app) == 249_000_000  # anon
    assert get("container_memory_cache", app) == 40_000_000  # file
    assert get("container_spec_memory_limit_bytes", app) == 536870912
    assert get("container_oom_events_total", app) == 1  # memory.events oom_kill
    # PSI: some -> waiting, full -> stalled, microseconds -> seconds
    assert get("container_pressure_memory_waiting_seconds_total", app) == 2.9
    assert get("container_pressure_memory_stalled_seconds_total", app) == 1.45
    assert get("container_fs_reads_bytes_total", {**app, "device": "/dev/sda"}) == 4096
    assert get("container_fs_writes_bytes_total", {**app, "device": "/dev/sda"}) == 8192
    assert get("container_fs_reads_bytes_total", {**app, "device": "253:0"}) == 512
    # a pod's cgroup and a slice: `id` only, so sums over container!="" count each once
    assert get("container_cpu_usage_seconds_total", {"id": KUBELET_POD}) == 30.0
    assert get("container_spec_memory_limit_bytes",
               {"id": "/kubepods.slice/kubepods-burstable.slice"}) == 0  # "max"
    # no quota: no CFS series (as cAdvisor), but the period
    service = {"id": "/system.slice/containerd.service"}
    assert get("container_cpu_cfs_periods_total", service) is None
    assert get("container_spec_cpu_quota", service) is None
    assert get("container_spec_cpu_period", service) == 100000
    # the pause container is not exported; one without runtime files has its id only
    assert get("redline_node_exporter_cgroups", {"state": "sandbox"}) == 1
    assert get("container_cpu_usage_seconds_total",
               {"id": f"{KUBELET_POD}/cri-containerd-{PAUSE}.scope"}) is None
    guaranteed = ("/kubepods.slice/kubepods-pod8a7b6c5d_4e3f_4a1b_9c8d_7e6f5a4b3c2d.slice/"
                  f"cri-containerd-{NOFILES}.scope")
    assert get("container_cpu_usage_seconds_total", {"id": guaranteed}) == 9.0
    # below --cgroups-depth 4: not walked
    assert get("container_cpu_usage_seconds_total",
               {**app, "id": f"{app['id']}/nested"}) is None


def test_docker_and_v1_values_by_hand() -> None:
    docker = registry_of("cgroupv2-docker").get_sample_value
    app = {"id": f"/system.slice/docker-{DOCKER}.scope", "container": "redline-demo-app-1"}
    assert docker("container_cpu_usage_seconds_total", app) == 120.0
    assert docker("container_cpu_cfs_throttled_seconds_total", app) == 0.34
    # its config unreadable (root's): named by its short id, as `docker ps` shows it
    assert docker("container_cpu_usage_seconds_total",
                  {"id": f"/system.slice/docker-{'e5' * 32}.scope",
                   "container": "e5" * 6}) == 0.001
    v1 = registry_of("cgroupv1").get_sample_value
    web = {"id": f"/docker/{DOCKER}", "container": "web"}
    assert v1("container_cpu_usage_seconds_total", web) == 25.0  # cpuacct.usage, ns
    assert v1("container_cpu_user_seconds_total", web) == 18.75  # cpuacct.usage_user
    assert v1("container_cpu_user_seconds_total", {"id": "/docker"}) == 22.5  # stat, ticks
    assert v1("container_cpu_cfs_throttled_seconds_total", web) == 35.0  # throttled_time, ns
    assert v1("container_memory_working_set_bytes", web) == 300_000_000 - 40_000_000
    assert v1("container_spec_memory_limit_bytes", web) == 314572800
    assert v1("container_spec_memory_limit_bytes", {"id": "/"}) == 0  # LLONG_MAX: unlimited
    assert v1("container_oom_events_total", web) == 1  # memory.oom_control oom_kill
    assert v1("container_pressure_memory_stalled_seconds_total", web) == 1.1  # unified tree
    assert v1("container_pressure_memory_stalled_seconds_total", {"id": "/docker"}) is None
    assert v1("container_fs_reads_bytes_total", {**web, "device": "8:0"}) == 3_000_000
    api = {"id": f"/kubepods/burstable/pod{POD}/{APP}", "namespace": "prod", "pod": "api-0",
           "container": "api"}
    assert v1("container_cpu_usage_seconds_total", api) == 7.9
    assert v1("redline_node_exporter_cgroups", {"state": "sandbox"}) == 1
    nopsi = registry_of("cgroupv2-nopsi").get_sample_value
    nginx = {"id": "/system.slice/nginx.service"}
    assert nopsi("container_oom_events_total", nginx) == 2
    assert nopsi("container_pressure_cpu_waiting_seconds_total", nginx) is None


def test_the_cgroups_collector_is_off_by_default() -> None:
    assert "cgroups" not in COLLECTORS
    assert "cgroups" not in NodeCollector(Roots()).enabled
    assert collector_list("cpu,cgroups") == ("cpu", "cgroups")


def test_bounds_depth_and_max() -> None:
    shallow = registry_of("cgroupv2-kubelet", cgroups_depth=1).get_sample_value
    assert shallow("redline_node_exporter_cgroups", {"state": "exported"}) == 3  # /, 2 slices
    capped = registry_of("cgroupv2-kubelet", cgroups_max=4)
    get = capped.get_sample_value
    assert get("redline_node_exporter_cgroups", {"state": "exported"}) == 4
    assert get("redline_node_exporter_cgroups", {"state": "over_limit"}) == 6
    ids = {s.labels["id"] for f in capped.collect() for s in f.samples
           if s.name == "container_cpu_usage_seconds_total"}
    # the shallowest first: the root, the top slices, then the first at depth 2
    assert ids == {"/", "/kubepods.slice", "/system.slice",
                   "/kubepods.slice/kubepods-burstable.slice"}


def test_a_garbage_file_leaves_out_its_cgroup_only(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "cgroupv2-nopsi", tmp_path / "tree")
    (tmp_path / "tree/cgroup/system.slice/nginx.service/cpu.max").write_text("lots\n")
    get = registry_of(tmp_path / "tree").get_sample_value
    assert get("redline_node_exporter_cgroups", {"state": "unreadable"}) == 1
    assert get("redline_node_exporter_cgroups", {"state": "exported"}) == 2
    assert get("node_scrape_collector_success", {"collector": "cgroups"}) == 1


def test_no_cgroup_mount_fails_the_collector_naming_it(tmp_path: Path) -> None:
    errors: list[str] = []
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(Roots(cgroupfs=str(tmp_path)), ["cgroups", "loadavg"],
                                    on_error=lambda name, exc: errors.append(str(exc))))
    get = registry.get_sample_value
    assert get("node_scrape_collector_success", {"collector": "cgroups"}) == 0
    assert get("node_scrape_collector_success", {"collector": "loadavg"}) == 1
    assert set(errors) == {f"{tmp_path}: neither cgroup v2 (cgroup.controllers) nor cgroup v1 "
                      "controller directories (cpu, cpuacct, memory, blkio)"}


@pytest.mark.parametrize(("path", "expected"), [
    (f"{KUBELET_POD}/cri-containerd-{APP}.scope", cgroups.PathIdentity("containerd", APP, POD)),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
     f"{POD.replace('-', '_')}.slice/crio-{APP}.scope", cgroups.PathIdentity("crio", APP, POD)),
    (f"/kubepods/burstable/pod{POD}/{APP}", cgroups.PathIdentity("", APP, POD)),
    (f"/kubepods/pod{POD}/{APP}", cgroups.PathIdentity("", APP, POD)),
    (f"/system.slice/docker-{DOCKER}.scope", cgroups.PathIdentity("docker", DOCKER)),
    (f"/docker/{DOCKER}", cgroups.PathIdentity("docker", DOCKER)),
    (KUBELET_POD, cgroups.PathIdentity()),  # a pod, not a container
    (f"/system.slice/crio-conmon-{APP}.scope", cgroups.PathIdentity()),  # CRI-O's monitor
    (f"/user.slice/{APP}", cgroups.PathIdentity()),  # an id-like name anywhere else
    ("/", cgroups.PathIdentity()),
])
def test_path_identity(path: str, expected: cgroups.PathIdentity) -> None:
    assert cgroups.path_identity(path) == expected


@pytest.mark.parametrize(("annotations", "name", "expected"), [
    ({"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.container-name": "a",
      "io.kubernetes.cri.sandbox-name": "p", "io.kubernetes.cri.sandbox-namespace": "n"}, "",
     cgroups.Identity("n", "p", "a")),
    ({"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-name": "p",
      "io.kubernetes.cri.sandbox-namespace": "n"}, "", cgroups.Identity("n", "p", sandbox=True)),
    ({"io.kubernetes.container.name": "a", "io.kubernetes.pod.name": "p",
      "io.kubernetes.pod.namespace": "n", "io.kubernetes.cri-o.ContainerType": "container"},
     "", cgroups.Identity("n", "p", "a")),
    ({"io.kubernetes.container.name": "POD", "io.kubernetes.pod.name": "p",
      "io.kubernetes.pod.namespace": "n", "io.kubernetes.docker.type": "podsandbox"},
     "k8s_POD_p", cgroups.Identity("n", "p", sandbox=True)),
    ({"com.docker.compose.service": "app"}, "redline-demo-app-1",
     cgroups.Identity(container="redline-demo-app-1")),
    ({}, "", cgroups.Identity()),
])
def test_runtime_identity(annotations: dict[str, str], name: str,
                          expected: cgroups.Identity) -> None:
    assert cgroups.runtime_identity(annotations, name) == expected


@pytest.mark.parametrize(("parse", "text", "message"), [
    (lambda t: cgroups.parse_keyed(t, "cpu.stat"), "usage_usec\n", "cpu.stat line 1: expected"),
    (lambda t: cgroups.parse_keyed(t, "memory.stat"), "anon x\n", "memory.stat line 1: cannot"),
    (lambda t: cgroups.parse_limit(t, "memory.max"), "lots\n", "memory.max: expected a number"),
    (cgroups.parse_cpu_max, "50000\n", "cpu.max: expected '\\$QUOTA \\$PERIOD'"),
    (cgroups.parse_io_stat, "8:0 rbytes=x\n", "io.stat line 1"),
    (cgroups.parse_blkio, "8:0 Read x\n", "blkio line 1"),
    (cgroups.parse_oci_annotations, "[1]", "config.json: expected an OCI runtime spec"),
    (cgroups.parse_docker_config, "{", "config.v2.json: expected a Docker container config"),
])
def test_parsers_name_the_file(parse: object, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)  # type: ignore[operator]


def test_unit_conversions() -> None:
    assert cgroups.parse_limit("max\n", "memory.max") == 0
    assert cgroups.parse_limit("9223372036854771712\n", "memory.limit_in_bytes") == 0
    assert cgroups.parse_limit("268435456\n", "memory.max") == 268435456
    assert cgroups.parse_cpu_max("max 100000\n") == (None, 100000)
    assert cgroups.parse_cpu_max("10000 100000\n") == (10000, 100000)
    assert cgroups.working_set(100, 30) == 70
    assert cgroups.working_set(100, 300) == 0  # never negative
    assert cgroups.parse_blkio("8:0 Read 1\n8:0 Write 2\n8:16 Write 5\nTotal 8\n") == {
        "8:0": (1, 2), "8:16": (0, 5)}
