"""Local stand-in for AWS + RDS PostgreSQL with IAM database authentication (tests, demo, benchmarks).

    from pgiam_sandbox import Sandbox
    with Sandbox(Path("/tmp/sb")) as sb:
        ...   # sb.env, sb.clusters, sb.boto_session("instancecrossaccount"), sb.admin_sql(...)

Importing this package is cheap: moto, trustme and psycopg load when a Sandbox starts.
"""

from typing import TYPE_CHECKING

from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.topology import InstancePids, SandboxCluster, SandboxInstance, Switches

if TYPE_CHECKING:
    from pgiam_sandbox.core import Sandbox

__all__ = ["InstancePids", "Sandbox", "SandboxCluster", "SandboxError", "SandboxInstance", "Switches"]


def __getattr__(name: str) -> object:
    # Sandbox pulls boto3 in; keep `import pgiam_sandbox` light for the CLI's --help.
    if name == "Sandbox":
        from pgiam_sandbox.core import Sandbox

        return Sandbox
    raise AttributeError(name)
