"""Deploying as a LangGraph server: the Dockerfile `langgraph dockerfile` makes from langgraph.json (offline)
installs this project and serves every graph, every exported graph loads, and secrets and environments
stay out of the image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.graph.state import CompiledStateGraph

from mapcoder_lite.graph import Context
from tests.modules import load_file

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "langgraph.json").read_text())
LANGGRAPH = Path(sys.executable).parent / "langgraph"
EXPECTED_GRAPHS = {"mapcoder_lite", "supervised_correction", "solve_and_review", "coding_agent"}


def dockerfile(tmp_path: Path) -> str:
    if not LANGGRAPH.exists():
        pytest.skip("langgraph-cli is not installed (pip install -e '.[dev]')")
    out = tmp_path / "Dockerfile"
    env = os.environ | {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true"}
    done = subprocess.run([str(LANGGRAPH), "dockerfile", "-c", str(ROOT / "langgraph.json"), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_text()


def test_dockerfile_installs_the_project_and_serves_every_graph(tmp_path: Path) -> None:
    text = dockerfile(tmp_path)
    added = [line.split()[1:] for line in text.splitlines() if line.startswith("ADD ")]
    assert len(added) == 1 and added[0][0] == "."  # the repository itself, nothing else
    target = added[0][1]
    assert target.startswith("/deps/")
    # Every folder copied under /deps is installed as a package: pip install -e of this pyproject.
    assert "for dep in /deps/*" in text and "-e ." in text
    assert "e2b-code-interpreter>=1.0" in text  # the sandbox backend a container can use

    graphs_line = next(line for line in text.splitlines() if line.startswith("ENV LANGSERVE_GRAPHS="))
    graphs = json.loads(graphs_line.split("=", 1)[1].strip("'"))
    assert set(graphs) == set(CONFIG["graphs"]) == EXPECTED_GRAPHS
    for graph_id, location in graphs.items():
        path, _, variable = location.partition(":")
        assert path.startswith(target + "/"), graph_id
        assert (ROOT / path.removeprefix(target + "/")).is_file(), location
        assert variable == "graph"


@pytest.mark.parametrize("graph_id", sorted(EXPECTED_GRAPHS))
def test_every_exported_graph_loads_with_the_context_schema(graph_id: str) -> None:
    path, _, variable = CONFIG["graphs"][graph_id].partition(":")
    module = load_file(ROOT / path, f"exported_{graph_id}")  # as the server loads it
    graph = getattr(module, variable)
    assert isinstance(graph, CompiledStateGraph)
    # The server adds its own checkpointer (Postgres under `langgraph up`); one compiled in would be ignored.
    assert graph.checkpointer is None
    # Context fields can be set per assistant and per run on every graph.
    assert issubclass(graph.builder.context_schema, Context)


def test_secrets_and_environments_stay_out_of_the_image_and_the_repository() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "runs"} <= ignored
    assert CONFIG["env"] == ".env" and ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    names = {line.split("=", 1)[0].lstrip("# ") for line in example.splitlines() if "=" in line}
    # Every MAPCODER_LITE_ variable named there is a real Context field.
    fields = {f"MAPCODER_LITE_{name.upper()}" for name in Context.__dataclass_fields__}
    assert {n for n in names if n.startswith("MAPCODER_LITE_")} <= fields
    assert "MAPCODER_LITE_SANDBOX=e2b" in example and "E2B_API_KEY" in names
