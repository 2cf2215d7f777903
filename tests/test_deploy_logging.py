"""The log-shipping samples in ``deploy/logging/`` (docs/operations.md, "Logs and traces").

Structural checks run everywhere: each file parses, every pipeline step reads from a step
that exists, every parser named is defined, and the JSON parsers' time formats read the
timestamps Emporium writes. The tools' own validation runs when the tool is on the ``PATH``
(``vector``, ``fluent-bit``, ``otelcol-contrib``); Debian 12 packages none of them, so CI
skips those with that reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from emporium.core.config import Settings
from emporium.core.logging import configure_logging

LOGGING = Path(__file__).resolve().parent.parent / "deploy" / "logging"


def _sections(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Fluent Bit's classic format: ``[SECTION]`` then ``Key Value`` lines."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            sections.append((line.strip("[]").upper(), {}))
        else:
            key, _, value = line.partition(" ")
            sections[-1][1][key.lower()] = value.strip()
    return sections


def _emporium_line(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """One JSON line as Emporium writes it."""
    configure_logging(Settings(log_format="json", log_level="INFO"))
    capsys.readouterr()
    structlog.get_logger("emporium.test_deploy_logging").info("shipped", order_id="o-1")
    line: dict[str, Any] = json.loads(capsys.readouterr().err.splitlines()[-1])
    return line


def test_vector_pipeline_is_wired_and_parses_json_lines() -> None:
    """Sources feed the JSON remap, the remap feeds the sink."""
    config = tomllib.loads((LOGGING / "vector.toml").read_text())
    sources, transforms, sinks = config["sources"], config["transforms"], config["sinks"]
    assert {s["type"] for s in sources.values()} == {"journald", "docker_logs"}
    steps = set(sources) | set(transforms)
    for step in [*transforms.values(), *sinks.values()]:
        assert step["inputs"]
        assert set(step["inputs"]) <= steps
    (remap,) = transforms.values()
    assert "parse_json(.message)" in remap["source"]
    assert set(remap["inputs"]) == set(sources)
    assert sources["emporium_journal"]["include_matches"] == {"SYSLOG_IDENTIFIER": ["emporium"]}


def test_fluent_bit_pipeline_names_defined_parsers_only() -> None:
    """Every parser a filter or input names is in the parsers file the service loads."""
    sections = _sections(LOGGING / "fluent-bit.conf")
    service = next(values for name, values in sections if name == "SERVICE")
    parsers = _sections(LOGGING / service["parsers_file"])
    defined = {values["name"] for name, values in parsers if name == "PARSER"}
    used = {values["parser"] for _, values in sections if "parser" in values}
    assert used == {"json", "docker"}
    assert used <= defined
    tags = {values["tag"] for name, values in sections if name == "INPUT"}
    for name, values in sections:
        if name in {"FILTER", "OUTPUT"}:
            pattern = re.compile(values["match"].replace(".", r"\.").replace("*", ".*"))
            assert any(pattern.fullmatch(tag) for tag in tags), values


def test_otel_collector_pipelines_use_defined_components() -> None:
    """Traces come in over OTLP/HTTP (what Emporium sends); logs from the journal."""
    config = yaml.safe_load((LOGGING / "otel-collector.yaml").read_text())
    assert set(config["receivers"]["otlp"]["protocols"]) == {"http"}
    for pipeline in config["service"]["pipelines"].values():
        assert set(pipeline["receivers"]) <= set(config["receivers"])
        assert set(pipeline["processors"]) <= set(config["processors"])
        assert set(pipeline["exporters"]) <= set(config["exporters"])
    operators = config["receivers"]["journald"]["operators"]
    assert [op["type"] for op in operators] == ["json_parser", "trace_parser"]


def test_parsers_read_the_timestamps_emporium_writes(capsys: pytest.CaptureFixture[str]) -> None:
    """Fluent Bit's ``%L`` is fractional seconds (Python's ``%f``); the Collector's Go
    layout ``.999999Z`` is the same shape. Both read a real line's ``timestamp``."""
    line = _emporium_line(capsys)
    parsers = _sections(LOGGING / "parsers.conf")
    json_parser = next(v for n, v in parsers if n == "PARSER" and v["name"] == "json")
    assert json_parser["time_key"] == "timestamp"
    python_format = json_parser["time_format"].replace("%L", "%f")
    assert datetime.strptime(line["timestamp"], python_format).year >= 2024
    config = yaml.safe_load((LOGGING / "otel-collector.yaml").read_text())
    timestamp = config["receivers"]["journald"]["operators"][0]["timestamp"]
    assert timestamp["layout"] == "2006-01-02T15:04:05.999999Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}Z", line["timestamp"])


@pytest.mark.parametrize(
    ("tool", "command"),
    [
        ("vector", ["validate", "--no-environment", str(LOGGING / "vector.toml")]),
        ("fluent-bit", ["--dry-run", "-c", str(LOGGING / "fluent-bit.conf")]),
        ("otelcol-contrib", ["validate", "--config", str(LOGGING / "otel-collector.yaml")]),
    ],
)
def test_the_tool_itself_accepts_the_file(tool: str, command: list[str]) -> None:
    """The shipper's own validation, where the shipper is installed."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian 12 does not package it)")
    done = subprocess.run([path, *command], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
