"""verify_ledger's replay check for the rights registry: the tables equal a replay of the ledger."""

from collections.abc import Iterator

from ledger.core.replay import ReplayError, first_difference
from ledger.log.verification import Failure, replay_checker
from ledger.registry.projection import registry_projection, registry_replay


@replay_checker
def registry_tables_equal_replay() -> Iterator[Failure]:
    """Yield a Failure naming the first entry that breaks a registry rule, or the first projection field whose
    table value differs from the replay's."""
    try:
        replayed = registry_replay()
    except ReplayError as error:
        yield Failure(error.seq, f"registry replay: {error}")
        return
    difference = first_difference(registry_projection(), replayed)
    if difference is not None:
        yield Failure(None, f"registry projection differs from the replay of the ledger at {difference}")
