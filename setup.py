"""Build hook: the wheel carries the console and the API docs as package data.

`static/` stays the top-level folder of the repository (the console is edited there, with no
build step); building the package copies it into `santamon/static/`, where
`santamon.api.console` looks first. Editable installs skip the copy and serve the checkout's
`static/` directly. Everything else is declared in setup.cfg.
"""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

STATIC = Path(__file__).resolve().parent / "static"


def _symlinks(directory: str, names: list[str]) -> list[str]:
    # The server never follows symlinks out of static/; the package must not carry them either.
    return [name for name in names if os.path.islink(os.path.join(directory, name))]


class BuildPyWithStatic(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        if not STATIC.is_dir():
            raise FileNotFoundError(f"{STATIC} is missing: the package would have no console")
        target = Path(self.build_lib) / "santamon" / "static"
        shutil.rmtree(target, ignore_errors=True)  # a file deleted from static/ leaves the package
        shutil.copytree(STATIC, target, ignore=_symlinks)


setup(cmdclass={"build_py": BuildPyWithStatic})
