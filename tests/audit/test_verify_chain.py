"""``verify_chain`` on envelopes in memory: each kind of break, and where it is reported."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proctor.audit import GENESIS, Envelope, Problem, SigningKey, Tamper, verify_chain
from proctor.audit.chain import checkpoint_message, envelope_hash
from proctor.audit.verify import Checkpoint
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
