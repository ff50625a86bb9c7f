"""The careCycle sandbox: careCycle's upload contract with a per-key rate limit and switchable faults.

Never mounted in the relay itself; served alone (`leadrelay sandbox`), by `leadrelay dev`, or by tests.
"""

from app.sandbox.app import create_sandbox_app
from app.sandbox.faults import Faults, ScriptedFailure
from app.sandbox.log import ReceivedRequest, RequestLog
from app.sandbox.server import SandboxServer, run_sandbox
from app.sandbox.state import Sandbox, UploadAnswer

__all__ = [
    "Faults",
    "ReceivedRequest",
    "RequestLog",
    "Sandbox",
    "SandboxServer",
    "ScriptedFailure",
    "UploadAnswer",
    "create_sandbox_app",
    "run_sandbox",
]
