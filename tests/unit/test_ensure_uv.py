"""`scripts/ensure-uv` (run by every make target): when the uv it finds or installs is not on
PATH, it says where uv is and prints the line that puts it there."""

from __future__ import annotations

import subprocess
from pathlib import Path

ENSURE_UV = Path(__file__).parents[2] / "scripts" / "ensure-uv"


def fake_uv(home: Path) -> Path:
    binary = home / ".local" / "bin" / "uv"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return binary


def ensure_uv(home: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(ENSURE_UV)],
        env={"HOME": str(home), "PATH": path},
        capture_output=True,
        text=True,
        check=True,
    )


def test_a_uv_off_path_is_used_and_the_line_that_puts_it_on_path_is_printed(
    tmp_path: Path,
) -> None:
    uv = fake_uv(tmp_path)

    done = ensure_uv(tmp_path, "/usr/bin:/bin")

    assert done.stdout == f"{uv}\n"
    assert f"uv is installed in {uv.parent}, which is not on your PATH" in done.stderr
    assert f'    export PATH="{uv.parent}:$PATH"' in done.stderr.splitlines()


def test_a_uv_on_path_needs_no_advice(tmp_path: Path) -> None:
    uv = fake_uv(tmp_path)

    done = ensure_uv(tmp_path, f"{uv.parent}:/usr/bin:/bin")

    assert done.stdout == f"{uv}\n"
    assert done.stderr == ""
