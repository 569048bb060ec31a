"""Privacy you can measure: differential privacy with a real accountant, and secure aggregation.

``TrainConfig.privacy`` (a mapping, see :class:`~hypergpu_lab.privacy.settings.PrivacySettings`)
turns it on; the coordinator calls the hooks of :class:`~hypergpu_lab.privacy.pipeline.PrivacyPipeline`.
``dp.py`` holds the Gaussian mechanisms, ``accountant.py`` the epsilon (Google's dp-accounting),
``secagg.py`` the masking protocol (X25519 from ``cryptography``), ``shamir.py`` the secret sharing
its dropout recovery needs. Both libraries are imported only
when a run asks for privacy.
"""

from __future__ import annotations

from .pipeline import PrivacyPipeline, check_strategy, check_train, expected_clients
from .settings import PrivacySettings, parse

__all__ = ["PrivacyPipeline", "PrivacySettings", "check_strategy", "check_train", "expected_clients", "parse"]
