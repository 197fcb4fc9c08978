"""Image recipes and what a Dockerfile declares: read from files, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SetupError
from harness.runtime.docker.builds import debian_packages
from harness.runtime.docker.images import BaseRecipe, apt_mirror
from harness.runtime.docker.wheels import requirements

TARGET = Path(__file__).resolve().parents[1] / "service" / "docker_target"
BULKHEAD = Path(__file__).resolve().parents[2] / "targets" / "bulkhead"


def test_base_recipe_hash_follows_the_recipe():
    assert BaseRecipe().digest == BaseRecipe().digest
    assert BaseRecipe(packages=("python3",)).digest != BaseRecipe().digest


def test_apt_mirror_reads_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    assert apt_mirror("bookworm", tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://old.example/debian trixie main\n")
    assert apt_mirror("trixie", tmp_path) == "http://old.example/debian"
    assert apt_mirror("bookworm", tmp_path) == "http://deb.debian.org/debian"


def test_wheels_come_from_the_dockerfiles_arg():
    assert requirements(TARGET / "Dockerfile") == ["httpx==0.28.1"]


def test_debian_packages_come_from_the_dockerfiles_arg(tmp_path):
    assert debian_packages(BULKHEAD / "Dockerfile") == ["postgresql-15"]
    assert debian_packages(TARGET / "Dockerfile") == []
    bad = tmp_path / "Dockerfile"
    bad.write_text('FROM x\nARG DEBS="postgresql-15 $(reboot)"\n')
    with pytest.raises(SetupError, match=r"ARG DEBS names \$\(reboot\)"):
        debian_packages(bad)
