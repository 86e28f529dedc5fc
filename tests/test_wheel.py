"""The package carries everything: built with `python -m build`, installed into a fresh
virtualenv outside the checkout, `santamon serve` serves the console and the API docs."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .helpers import ANALYST, REPO, ServerProcess

pytestmark = pytest.mark.e2e

STATIC = REPO / "static"
STEP_TIMEOUT = 300  # seconds for a build or an install; pip may have to fetch dependencies


def run(*command: str | Path, cwd: Path) -> str:
    result = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                            text=True, timeout=STEP_TIMEOUT, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fetch(server: ServerProcess, path: str) -> bytes:
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        assert response.status == 200, path
        return response.read()


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding the wheel (and its dependencies, installed by pip as a user would),
    nowhere near the checkout. The wheel is built from the sdist, as `python -m build` does,
    so a stale build/ folder cannot leak into it and the sdist is proven complete too."""
    root = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "build", "--outdir", root / "dist", REPO, cwd=root)
    (wheel,) = (root / "dist").glob("santamon_backend-*.whl")
    run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    run(root / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, cwd=root)
    return root


def test_the_wheel_holds_the_whole_static_folder(installed: Path):
    package = Path(run(installed / "venv" / "bin" / "python", "-c",
                       "import santamon; print(santamon.__file__)", cwd=installed).strip()).parent
    assert installed in package.parents  # not the checkout
    assert files_under(package / "static") == files_under(STATIC)


def test_an_installed_wheel_serves_the_console_and_the_docs(installed: Path):
    server = ServerProcess(installed / "run" / "signals.db", cwd=installed,
                           command=[str(installed / "venv" / "bin" / "santamon"), "serve"])
    server.env.pop("PYTHONPATH", None)  # only what the virtualenv holds
    (installed / "run").mkdir()
    server.start()
    try:
        for path, source in (("/ui", "index.html"), ("/static/js/main.js", "js/main.js"),
                             ("/static/js/format.js", "js/format.js"),
                             ("/static/app.css", "app.css"),
                             ("/static/vendor/swagger-ui/swagger-ui-bundle.js",
                              "vendor/swagger-ui/swagger-ui-bundle.js"),
                             ("/docs", "docs/swagger.html"), ("/redoc", "docs/redoc.html")):
            assert fetch(server, path) == (STATIC / source).read_bytes(), path
        request = urllib.request.Request(server.url + "/signals", headers=ANALYST)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        assert server.stop() == 0, server.log()
