"""An install of celery_gcp, editable (README's ``pip install -e .``) or from the wheel, makes
only ``celery_gcp`` importable: this repository's tests/, examples/ and benchmarks/ packages
must not shadow a user's own ``tests`` package."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run in a user's project, whose folder comes on sys.path after site-packages (a PYTHONPATH
# entry, a .pth file): nothing an install adds may take its `tests` name.
PROBE = """
import importlib.util, sys
print(importlib.util.find_spec("tests"), importlib.util.find_spec("examples"),
      importlib.util.find_spec("benchmarks"))
sys.path.append(sys.argv[1])
import tests.config
print(tests.config.OWNER)
print(importlib.util.find_spec("celery_gcp").origin)
"""


def _pip(python: Path, *args: str | Path) -> None:
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", *args],
                   check=True, capture_output=True, timeout=300)


def _user_project(tmp_path: Path) -> Path:
    project = tmp_path / "userproj"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "__init__.py").write_text("")
    (project / "tests" / "config.py").write_text('OWNER = "the user"\n')
    return project


def test_an_editable_install_exposes_only_celery_gcp(tmp_path: Path) -> None:
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    # Without its dependencies (celery_gcp is not imported), but with the import hook's
    # package, which the editable wheel requires.
    _pip(python, "editables", "-e", ROOT)
    project = _user_project(tmp_path)
    out = subprocess.run([python, "-I", "-c", PROBE, project], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    others, owner, origin = out.stdout.splitlines()
    assert others == "None None None"
    assert owner == "the user"
    assert origin == str(ROOT / "celery_gcp" / "__init__.py")  # editable: this folder


def test_the_wheel_ships_only_celery_gcp(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path,
                    ROOT], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("celery_gcp-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"celery_gcp"}
    assert not any(n.endswith(".pth") for n in zipfile.ZipFile(wheel).namelist())
