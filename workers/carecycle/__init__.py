"""careCycle, as delivery sees it: the upload client (`client`), what its answers mean (`answers`) and the
errors an upload ends in (`errors`, where the tree is drawn). Delivery imports from here.
"""

from __future__ import annotations

from workers.carecycle.answers import UploadResult, classify_response
from workers.carecycle.client import CareCycleClient
from workers.carecycle.errors import (
    CareCycleAmbiguousError,
    CareCycleAuthError,
    CareCycleConfigurationError,
    CareCycleConnectionError,
    CareCycleError,
    CareCycleNotFoundError,
    CareCycleRateLimitedError,
    CareCycleRedirectError,
    CareCycleRequestError,
    CareCycleTransientError,
    CareCycleUnreadableError,
    CareCycleUnrecognizedError,
    CareCycleValidationError,
    outcome_label,
)

__all__ = [
    "CareCycleAmbiguousError",
    "CareCycleAuthError",
    "CareCycleClient",
    "CareCycleConfigurationError",
    "CareCycleConnectionError",
    "CareCycleError",
    "CareCycleNotFoundError",
    "CareCycleRateLimitedError",
    "CareCycleRedirectError",
    "CareCycleRequestError",
    "CareCycleTransientError",
    "CareCycleUnreadableError",
    "CareCycleUnrecognizedError",
    "CareCycleValidationError",
    "UploadResult",
    "classify_response",
    "outcome_label",
]
