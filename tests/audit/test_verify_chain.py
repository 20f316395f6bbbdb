"""``verify_chain`` on envelopes in memory: each kind of break, and where it is reported."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proctor.audit import GENESIS, Envelope, Problem, SigningKey, Tamper, verify_chain
from proctor.audit.chain import checkpoint_message, envelope_hash
from proctor.audit.verify import Checkpoint, Purge
from proctor.jsonvalue import canonical_json, sha256_hex

T = "acme"
KEY = SigningKey(Ed25519PrivateKey.generate())
WHEN = "2026-01-01T00:00:00.000000+00:00"


def link(entry: Envelope, prev_hash: str, seq: int | None = None) -> Envelope:
    """``entry`` at ``seq`` after ``prev_hash``, its own hash recomputed."""
    moved = dataclasses.replace(entry, seq=entry.seq if seq is None else seq, prev_hash=prev_hash)
    return dataclasses.replace(moved, entry_hash=moved.computed_hash())


def chain(n: int) -> tuple[list[Envelope], dict[str, str]]:
    entries: list[Envelope] = []
    payloads: dict[str, str] = {}
    prev_hash = GENESIS
    for seq in range(1, n + 1):
        entry_id = f"aud_{seq}"
        body = canonical_json({"kind": "run.state", "n": seq})
        payloads[entry_id] = body
        blank = Envelope(
            T, seq, entry_id, "run.state", "run_1", None, WHEN, "v1", sha256_hex(body), "", ""
        )
        entries.append(link(blank, prev_hash))
        prev_hash = entries[-1].entry_hash
    return entries, payloads


def signed(entry: Envelope, key: SigningKey = KEY) -> Checkpoint:
    message = checkpoint_message(T, entry.seq, entry.entry_hash, WHEN, key.key_id)
    return Checkpoint(T, entry.seq, entry.entry_hash, WHEN, key.key_id, key.sign(message))


def head(entries: list[Envelope]) -> tuple[int, str]:
    return entries[-1].seq, entries[-1].entry_hash


def verify(
    entries: list[Envelope],
    payloads: dict[str, str],
    checkpoints: list[Checkpoint] | None = None,
    head_: tuple[int, str] | None = None,
) -> list[Problem]:
    return verify_chain(T, entries, payloads, checkpoints or [], [KEY.verify_key], head_)


def test_an_intact_chain_has_no_problems() -> None:
    entries, payloads = chain(5)
    assert verify(entries, payloads, [signed(entries[2]), signed(entries[4])], head(entries)) == []


def test_the_hash_is_the_documented_function_of_the_envelope() -> None:
    entries, _ = chain(2)
    e = entries[1]
    assert e.prev_hash == entries[0].entry_hash
    assert entries[0].prev_hash == GENESIS
    assert e.entry_hash == envelope_hash(
        T, 2, "aud_2", "run.state", "run_1", None, WHEN, "v1", e.payload_hash, e.prev_hash
    )
    assert e.entry_hash == sha256_hex(
        canonical_json(
            [T, 2, "aud_2", "run.state", "run_1", None, WHEN, "v1", e.payload_hash, e.prev_hash]
        )
    )


@pytest.mark.parametrize(
    ("head_", "expected"),
    [
        (None, []),
        ((0, GENESIS), []),
        (
            (2, "f" * 64),
            [Problem(T, 1, None, Tamper.DELETED, "the chain ends at 0 but its head says 2")],
        ),
    ],
)
def test_an_empty_chain(head_: tuple[int, str] | None, expected: list[Problem]) -> None:
    assert verify([], {}, head_=head_) == expected


def test_a_deleted_first_entry() -> None:
    entries, payloads = chain(3)
    assert verify(entries[1:], payloads)[0] == Problem(
        T, 2, "aud_2", Tamper.DELETED, "the entry before it is missing (expected entry 1)"
    )


def test_an_entry_relinked_to_genesis_is_a_modified_link() -> None:
    entries, payloads = chain(4)
    entries[2] = link(entries[2], GENESIS)
    assert verify(entries, payloads)[0] == Problem(
        T, 3, "aud_3", Tamper.MODIFIED, "its link to the previous entry was changed"
    )


def test_a_number_that_goes_back_is_an_insertion() -> None:
    entries, payloads = chain(3)
    replay = link(dataclasses.replace(entries[1], entry_id="aud_x"), entries[2].entry_hash)
    payloads["aud_x"] = payloads["aud_2"]
    assert verify([*entries, replay], payloads)[0] == Problem(
        T, 2, "aud_x", Tamper.INSERTED, "its number repeats or goes back (expected 4)"
    )


def test_two_inserted_entries_are_both_named() -> None:
    entries, payloads = chain(4)
    a = link(dataclasses.replace(entries[1], entry_id="aud_a"), entries[1].entry_hash, seq=3)
    b = link(dataclasses.replace(entries[1], entry_id="aud_b"), a.entry_hash, seq=4)
    payloads |= {"aud_a": payloads["aud_2"], "aud_b": payloads["aud_2"]}
    renumbered = [dataclasses.replace(e, seq=e.seq + 2) for e in entries[2:]]
    problems = verify([*entries[:2], a, b, *renumbered], payloads)
    assert problems[0] == Problem(
        T, 5, "aud_3", Tamper.INSERTED, "entry 3, 4 is not part of the chain (nothing links to it)"
    )


def test_the_last_entry_not_matching_the_head() -> None:
    entries, payloads = chain(3)
    assert verify(entries, payloads, head_=(3, "f" * 64)) == [
        Problem(T, 3, "aud_3", Tamper.MODIFIED, "the last entry does not match the chain head")
    ]


def test_one_entry_past_the_head_is_named() -> None:
    entries, payloads = chain(3)
    assert verify(entries, payloads, head_=head(entries[:2])) == [
        Problem(T, 3, "aud_3", Tamper.INSERTED, "entries after 2 were added outside the log")
    ]


def test_two_entries_past_the_head_name_the_first_of_them() -> None:
    entries, payloads = chain(4)
    (problem,) = verify(entries, payloads, head_=head(entries[:2]))
    assert (problem.seq, problem.entry_id, problem.tamper) == (3, "aud_3", Tamper.INSERTED)


def test_checkpoint_problems_come_after_chain_problems() -> None:
    entries, payloads = chain(3)
    payloads["aud_2"] = "{}"
    bad = dataclasses.replace(signed(entries[2]), signature="00" * 64)
    assert verify(entries, payloads, [bad], head(entries)) == [
        Problem(T, 2, "aud_2", Tamper.MODIFIED, "its payload was changed"),
        Problem(T, 3, None, Tamper.BAD_SIGNATURE, "the checkpoint signature does not verify"),
    ]


def test_a_checkpoint_by_an_unknown_key_and_one_over_another_head() -> None:
    entries, payloads = chain(3)
    other = SigningKey(Ed25519PrivateKey.generate())
    stale = signed(dataclasses.replace(entries[1], entry_hash="e" * 64))
    assert verify(entries, payloads, [stale, signed(entries[2], other)], head(entries)) == [
        Problem(
            T,
            2,
            "aud_2",
            Tamper.MODIFIED,
            "the chain was rewritten: it differs from a signed checkpoint",
        ),
        Problem(
            T, 3, None, Tamper.BAD_SIGNATURE, f"checkpoint signed by unknown key {other.key_id}"
        ),
    ]
    keys = [KEY.verify_key, other.verify_key]
    assert verify_chain(T, entries, payloads, [signed(entries[2], other)], keys, None) == []


def test_a_problem_reads_as_one_line() -> None:
    problem = Problem(T, 7, "aud_7", Tamper.REORDERED, "it follows entry 8")
    assert str(problem) == "tenant acme, entry 7 (aud_7): reordered: it follows entry 8"
    assert str(Problem(T, 3, None, Tamper.DELETED, "gone")) == "tenant acme, entry 3: deleted: gone"


# -- the chain of checkpoints ------------------------------------------------------------


def linked(entries: list[Envelope], seqs: list[int], key: SigningKey = KEY) -> list[Checkpoint]:
    """Checkpoints at ``seqs``, each linked to the one before, as the signer writes them."""
    found: list[Checkpoint] = []
    for seq in seqs:
        entry = entries[seq - 1]
        prev = found[-1] if found else None
        blank = Checkpoint(
            T,
            seq,
            entry.entry_hash,
            WHEN,
            key.key_id,
            "",
            (prev.number or 0) + 1 if prev else 1,
            prev.hash if prev else GENESIS,
        )
        found.append(dataclasses.replace(blank, signature=key.sign(blank.message())))
    return found


def test_linked_checkpoints_verify_and_may_follow_unlinked_ones() -> None:
    entries, payloads = chain(6)
    assert verify(entries, payloads, linked(entries, [2, 4, 6]), head(entries)) == []
    older = signed(entries[0])
    first = linked(entries, [1, 3])[1]
    relinked = dataclasses.replace(first, prev_hash=older.hash, number=1)
    relinked = dataclasses.replace(relinked, signature=KEY.sign(relinked.message()))
    assert verify(entries, payloads, [older, relinked], head(entries)) == []


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        (
            [0, 2],
            (
                Tamper.DELETED,
                "checkpoint 2 is missing: checkpoint 3 follows checkpoint 1 (entry 2)",
            ),
        ),
        (
            [1, 2],
            (
                Tamper.DELETED,
                "checkpoint 1 is missing: checkpoint 2 follows the start of the chain",
            ),
        ),
        (
            [0, 3],
            (
                Tamper.DELETED,
                "checkpoints 2-3 are missing: checkpoint 4 follows checkpoint 1 (entry 2)",
            ),
        ),
    ],
)
def test_a_removed_checkpoint_is_named(keep: list[int], expected: tuple[Tamper, str]) -> None:
    entries, payloads = chain(8)
    checkpoints = linked(entries, [2, 4, 6, 8])
    problems = verify(entries, payloads, [checkpoints[i] for i in keep], head(entries))
    assert [(p.tamper, p.detail) for p in problems] == [expected]


def test_a_checkpoint_from_another_chain_with_the_same_key_is_inserted() -> None:
    entries, payloads = chain(4)
    ours = linked(entries, [2, 4])
    # Number 2 over our head, but signed after some other checkpoint 1 (say, a copy's).
    stranger = dataclasses.replace(ours[1], prev_hash="e" * 64)
    stranger = dataclasses.replace(stranger, signature=KEY.sign(stranger.message()))
    problems = verify(entries, payloads, [ours[0], stranger], head(entries))
    assert [(p.seq, p.tamper, p.detail) for p in problems] == [
        (
            4,
            Tamper.INSERTED,
            "checkpoint 2 does not link to checkpoint 1 (entry 2): it was not signed after it",
        )
    ]


def test_an_unlinked_checkpoint_after_linked_ones_is_inserted() -> None:
    entries, payloads = chain(4)
    problems = verify(entries, payloads, [*linked(entries, [2]), signed(entries[3])], head(entries))
    assert [(p.seq, p.tamper) for p in problems] == [(4, Tamper.INSERTED)]


# -- purges that were not due ------------------------------------------------------------


def purge_chain(
    entry_time: str, cutoff: str, at: str
) -> tuple[list[Envelope], dict[str, str], dict[str, Purge]]:
    """Entry 1 (written at ``entry_time``) purged by entry 2, a purge record at ``at``."""
    record = canonical_json(
        {
            "kind": "retention.purged",
            "what": "payloads",
            "rule": "retention.default.payloads=30d",
            "cutoff": cutoff,
            "count": 1,
            "oldest": entry_time,
            "newest": entry_time,
            "first_seq": 1,
            "last_seq": 1,
            "run_ids": [],
        }
    )
    body = canonical_json({"kind": "run.state", "n": 1})
    first = link(
        Envelope(
            T, 1, "aud_1", "run.state", "run_1", None, entry_time, "v1", sha256_hex(body), "", ""
        ),
        GENESIS,
    )
    second = link(
        Envelope(
            T, 2, "aud_2", "retention.purged", None, None, at, "v1", sha256_hex(record), "", ""
        ),
        first.entry_hash,
    )
    purges = {"aud_1": Purge(at, "retention.default.payloads=30d", "aud_2")}
    return [first, second], {"aud_2": record}, purges


def test_a_purge_that_was_due_is_accounted_for() -> None:
    entries, payloads, purges = purge_chain(
        "2026-01-01T00:00:00.000000+00:00",
        "2026-01-02T00:00:00.000000+00:00",
        "2026-02-01T00:00:00.000000+00:00",
    )
    assert verify_chain(T, entries, payloads, [], [KEY.verify_key], None, purges=purges) == []


def test_a_purge_of_a_fresh_entry_was_not_due() -> None:
    entries, payloads, purges = purge_chain(
        "2026-01-31T00:00:00.000000+00:00",
        "2026-01-02T00:00:00.000000+00:00",
        "2026-02-01T00:00:00.000000+00:00",
    )
    (problem,) = verify_chain(T, entries, payloads, [], [KEY.verify_key], None, purges=purges)
    assert (problem.seq, problem.tamper) == (1, Tamper.DELETED)
    assert problem.detail.endswith("it was not due")


def test_a_cutoff_later_than_the_rule_allows_is_named() -> None:
    entries, payloads, purges = purge_chain(
        "2026-01-10T00:00:00.000000+00:00",
        "2026-01-20T00:00:00.000000+00:00",
        "2026-02-01T00:00:00.000000+00:00",
    )
    (problem,) = verify_chain(T, entries, payloads, [], [KEY.verify_key], None, purges=purges)
    assert "later than retention.default.payloads=30d allows" in problem.detail


def resigned_as(cp: Checkpoint, number: int, prev_hash: str) -> Checkpoint:
    """``cp`` renumbered and relinked, signed with the key (only a key holder can)."""
    moved = dataclasses.replace(cp, number=number, prev_hash=prev_hash)
    return dataclasses.replace(moved, signature=KEY.sign(moved.message()))


def test_checkpoints_out_of_order_and_repeated_are_named() -> None:
    entries, payloads = chain(6)
    one, two, three = linked(entries, [2, 4, 6])
    backwards = resigned_as(three, 1, GENESIS)
    problems = verify(entries, payloads, [one, two, backwards], head(entries))
    assert [(p.seq, p.tamper, p.detail) for p in problems] == [
        (6, Tamper.REORDERED, "checkpoint 1 comes after checkpoint 2 (entry 4)")
    ]
    again = resigned_as(three, 2, one.hash)
    problems = verify(entries, payloads, [one, two, again], head(entries))
    assert [(p.seq, p.tamper, p.detail) for p in problems] == [
        (6, Tamper.INSERTED, "checkpoint 2 repeats: it follows checkpoint 2 (entry 4)")
    ]
