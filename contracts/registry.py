"""Every contract the platform knows, by (source, table), newest version last."""

from contracts.base import FeedTable
from contracts.cascade import CASCADE_TABLES
from contracts.collections import CollectionsV1, CollectionsV2
from contracts.delinquency import DelinquencyV1

CONTRACT_VERSIONS: dict[tuple[str, str], tuple[type[FeedTable], ...]] = {}
for _contract in (*CASCADE_TABLES, CollectionsV1, CollectionsV2, DelinquencyV1):
    CONTRACT_VERSIONS.setdefault((_contract.source, _contract.table), ())
    CONTRACT_VERSIONS[(_contract.source, _contract.table)] += (_contract,)

SOURCES: tuple[str, ...] = ("cascade", "collections", "delinquency")


def tables_of(source: str) -> list[str]:
    return [table for (src, table) in CONTRACT_VERSIONS if src == source]


def latest(source: str, table: str) -> type[FeedTable]:
    return CONTRACT_VERSIONS[(source, table)][-1]


def all_latest() -> list[type[FeedTable]]:
    return [versions[-1] for versions in CONTRACT_VERSIONS.values()]


def find(contract_ref: str, version: str) -> type[FeedTable]:
    """``("cascade/loan_data", "v1")`` -> the contract class; KeyError with the known names otherwise."""
    source, _, table = contract_ref.partition("/")
    versions = CONTRACT_VERSIONS.get((source, table))
    if versions is None:
        known = ", ".join(f"{s}/{t}" for s, t in CONTRACT_VERSIONS)
        raise KeyError(f"unknown table {contract_ref!r}; known: {known}")
    number = int(version.lower().removeprefix("v"))
    for contract in versions:
        if contract.version == number:
            return contract
    raise KeyError(f"{contract_ref} has no version {version}; known: {', '.join(f'v{c.version}' for c in versions)}")
