"""The deploy kit's files against each other and against what the binaries do.

Grace periods must outlast a worker's drain (worker.cpp: drain_timeout_seconds, then 30 s to
hand back, plus a create in flight for the providers' api_timeout of 30 s); Kubernetes pods
must store clips where every pod and the client can read them and must be able to read their
mounted Secret as the image's user; the generated ConfigMap must match the sample config.
"""

import os
import re
import subprocess
import tempfile
import unittest

import yaml

SOURCE = os.environ.get("REELQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(SOURCE, "deploy")

HAND_BACK_SECONDS = 30  # worker.cpp: the window after the drain timer
API_TIMEOUT_SECONDS = 30  # providers' api_timeout default: a create in flight at the end


def read(*parts):
    with open(os.path.join(DEPLOY, *parts), encoding="utf-8") as f:
        return f.read()


def sample_config():
    return yaml.safe_load(read("reelq.yaml"))


def needed_grace_seconds():
    drain = sample_config()["worker"]["drain_timeout_seconds"]
    return drain + HAND_BACK_SECONDS + API_TIMEOUT_SECONDS


def k8s_deployment(name):
    for doc in yaml.safe_load_all(read("k8s", name)):
        if doc and doc.get("kind") == "Deployment":
            return doc
    raise AssertionError(f"no Deployment in k8s/{name}")


def dockerfile_uid():
    match = re.search(r"useradd [^\n]*--uid (\d+)[^\n]* reelq", read("docker", "Dockerfile"))
    assert match, "Dockerfile: no useradd --uid for the reelq user"
    return int(match.group(1))


class GracePeriods(unittest.TestCase):
    def test_kubernetes_worker_outlasts_its_drain(self):
        spec = k8s_deployment("worker.yaml")["spec"]["template"]["spec"]
        self.assertGreaterEqual(spec["terminationGracePeriodSeconds"], needed_grace_seconds())

    def test_compose_worker_outlasts_its_drain(self):
        worker = yaml.safe_load(read("compose.yaml"))["services"]["worker"]
        grace = worker["stop_grace_period"]
        self.assertRegex(grace, r"^\d+s$")
        self.assertGreaterEqual(int(grace[:-1]), needed_grace_seconds())

    def test_systemd_worker_outlasts_its_drain(self):
        unit = read("systemd", "reelq-worker@.service")
        match = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
        self.assertIsNotNone(match, "reelq-worker@.service: no TimeoutStopSec")
        self.assertGreaterEqual(int(match.group(1)), needed_grace_seconds())

    def test_docker_stop_advice_outlasts_the_drain(self):
        for name, text in (("docker/Dockerfile", read("docker", "Dockerfile")),
                           ("README.md", read("README.md"))):
            for seconds in re.findall(r"docker stop -t (\d+)", text):
                self.assertGreaterEqual(int(seconds), needed_grace_seconds(), name)


class KubernetesPods(unittest.TestCase):
    def env_of(self, deployment):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container.get("env", [])}

    def test_both_programs_store_to_a_shared_backend(self):
        # The ConfigMap's reelq.yaml is the sample (backend fs); a pod's own disk is gone with
        # the pod and unreadable by the others, so the Deployments must switch to s3.
        for name in ("worker.yaml", "scheduler.yaml"):
            deployment = k8s_deployment(name)
            backend = self.env_of(deployment).get("REELQ__STORAGE__BACKEND")
            if backend is None:
                backend = sample_config()["storage"]["backend"]
            self.assertEqual(backend, "s3", name)
            volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
            self.assertFalse([v for v in volumes if "emptyDir" in v], name)

    def test_the_image_user_can_read_the_mounted_secret(self):
        uid = dockerfile_uid()
        for name in ("worker.yaml", "scheduler.yaml"):
            spec = k8s_deployment(name)["spec"]["template"]["spec"]
            context = spec.get("securityContext", {})
            for volume in spec.get("volumes", []):
                if "secret" not in volume:
                    continue
                mode = volume["secret"].get("defaultMode", 0o644)
                if mode & 0o004:
                    continue  # world-readable
                self.assertEqual(context.get("fsGroup"), uid, f"{name}: secret {volume['name']}")
                self.assertTrue(mode & 0o040, f"{name}: secret {volume['name']} not group-readable")
            self.assertEqual(context.get("runAsUser"), uid, name)

    def test_redis_has_a_memory_ceiling_under_its_limit(self):
        conf = read("redis", "reelq-redis.conf")
        self.assertRegex(conf, r"(?m)^maxmemory-policy noeviction$")
        text = read("k8s", "redis.yaml")
        ceilings = re.findall(r"--maxmemory (\d+)gb", text)
        self.assertTrue(ceilings, "redis.yaml: redis-server started without --maxmemory")
        limit = re.search(r"limits: \{memory: (\d+)Gi\}", text)
        self.assertIsNotNone(limit)
        for ceiling in ceilings:
            self.assertLess(int(ceiling), int(limit.group(1)))

    def test_config_map_is_generated_from_the_current_sample(self):
        with tempfile.TemporaryDirectory() as scratch:
            # The script writes into deploy/k8s of the tree it sits in: run a copy of the tree's
            # relevant parts so the checkout is never written.
            os.makedirs(os.path.join(scratch, "scripts"))
            os.makedirs(os.path.join(scratch, "deploy", "k8s"))
            os.makedirs(os.path.join(scratch, "deploy", "redis"))
            for rel in ("scripts/gen-k8s-config.sh", "deploy/reelq.yaml",
                        "deploy/catalogue.yaml", "deploy/redis/reelq-redis.conf"):
                with open(os.path.join(SOURCE, rel), "rb") as src, \
                        open(os.path.join(scratch, rel), "wb") as dst:
                    dst.write(src.read())
            subprocess.run(["bash", os.path.join(scratch, "scripts", "gen-k8s-config.sh")],
                           check=True, capture_output=True)
            with open(os.path.join(scratch, "deploy", "k8s", "config.yaml"), encoding="utf-8") as f:
                generated = f.read()
        self.assertEqual(read("k8s", "config.yaml"), generated,
                         "deploy/k8s/config.yaml is stale: run scripts/gen-k8s-config.sh")


class DockerImage(unittest.TestCase):
    def stage(self, name):
        text = read("docker", "Dockerfile")
        match = re.search(r"FROM [^\n]* AS " + name + r"\n(.*?)(?=\nFROM |\Z)", text, re.S)
        self.assertIsNotNone(match, name)
        return set(re.findall(r"[a-z0-9][a-z0-9.+-]+", match.group(1)))

    def test_build_stage_has_every_library_the_build_links(self):
        with open(os.path.join(SOURCE, "scripts", "install-deps.sh"), encoding="utf-8") as f:
            install = f.read()
        packages = re.search(r'PACKAGES="(.*?)"', install, re.S).group(1).split()
        build = self.stage("build")
        # The image builds the programs, not the fuzzers (clang's runtime is for those).
        not_for_the_image = {"libclang-rt-14-dev"}
        for package in packages:
            if package.endswith("-dev") and package not in not_for_the_image:
                self.assertIn(package, build, f"Dockerfile build stage lacks {package}")

    def test_runtime_stage_has_what_the_programs_run(self):
        runtime = self.stage("runtime")
        # The scheduler links jemalloc; the worker runs ffmpeg/ffprobe (joins, contact sheets,
        # chain frames) and draws text with DejaVu.
        for package in ("libjemalloc2", "ffmpeg", "fonts-dejavu-core"):
            self.assertIn(package, runtime, f"Dockerfile runtime stage lacks {package}")

    def test_the_clip_directory_belongs_to_the_image_user(self):
        # A named volume mounted at a path the image lacks is created root-owned: the reelq
        # user could not write a clip there.
        text = read("docker", "Dockerfile")
        root = sample_config()["storage"]["fs"]["root"]
        self.assertRegex(text, r"install -d -o reelq -g reelq " + re.escape(root))


class Systemd(unittest.TestCase):
    def test_units_can_write_the_fs_store(self):
        root = sample_config()["storage"]["fs"]["root"]
        for name in ("reelq-scheduler.service", "reelq-worker@.service"):
            unit = read("systemd", name)
            if not re.search(r"(?m)^ProtectSystem=strict$", unit):
                continue
            writable = re.findall(r"(?m)^ReadWritePaths=(.*)$", unit)
            writable += ["/var/lib/" + d for d in re.findall(r"(?m)^StateDirectory=(.*)$", unit)]
            self.assertTrue(any(root == w or root.startswith(w.rstrip("/") + "/")
                                for w in writable), f"{name}: {root} read-only")


if __name__ == "__main__":
    unittest.main()
