"""Where the console, the docs pages and the vendored Swagger UI/ReDoc are: inside the package
when it was installed from a wheel (the build copies static/ there, see setup.py), else the
checkout's top-level static/ (an editable install, or running from the source tree)."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
STATIC_DIR = _PACKAGE / "static" if (_PACKAGE / "static").is_dir() else _PACKAGE.parent / "static"
