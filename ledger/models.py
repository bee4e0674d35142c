"""The ledger app's tables, one app label and one migrations folder for all its sub-packages.

Each sub-package keeps its own models (the log's entries and checkpoints, the registry's parties and assets,
webhook subscriptions, on-chain anchors); Django finds them all through this module.
"""

from ledger.anchoring.models import *  # noqa: F403
from ledger.log.models import *  # noqa: F403
from ledger.registry.models import *  # noqa: F403
from ledger.webhooks.models import *  # noqa: F403
