"""The domain can be embedded on its own: importing it loads no infrastructure library."""

from __future__ import annotations

import json
import subprocess
import sys

INFRASTRUCTURE = ("pydantic", "confluent_kafka", "sqlalchemy", "fastavro", "litestar", "structlog")


def test_importing_the_domain_loads_no_infrastructure_module() -> None:
    # A fresh interpreter: this test process may already have imported anything.
    script = "import json, sys, pipeline.domain; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)

    assert "pipeline.domain" in loaded
    offending = [name for name in loaded if name.split(".")[0] in INFRASTRUCTURE]
    assert offending == []
