"""Checkpoints as verification sees them: signatures with the keys given, the chain of
checkpoints (number and link), and the heads an anchor holds outside the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from proctor.audit.keys import VerifyKey
from proctor.audit.problems import Problem, Tamper
from proctor.audit.records import GENESIS, Checkpoint, Envelope


def signed_form(cp: Checkpoint, key: VerifyKey) -> Checkpoint | None:
    """``cp`` as ``key`` signed it, or ``None``. A signature over the older, unlinked
    message makes an unlinked checkpoint, whatever its link columns say."""
    if key.verify(cp.signature, cp.message()):
        return cp
    if cp.linked:
        unlinked = replace(cp, number=None, prev_hash=None)
        if key.verify(cp.signature, unlinked.message()):
            return unlinked
    return None


def signature_problems(
    tenant: str,
    entries: Sequence[Envelope],
    checkpoints: Sequence[Checkpoint],
    keys: Mapping[str, VerifyKey],
) -> tuple[list[Problem], list[Checkpoint]]:
    """Checkpoints whose signature fails or whose head is not the chain's; and the
    checkpoints whose signature verifies, in order."""
    by_seq = {e.seq: e for e in entries}
    problems, valid = [], []
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        key = keys.get(cp.key_id)
        if key is None:
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    None,
                    Tamper.BAD_SIGNATURE,
                    f"checkpoint signed by unknown key {cp.key_id}",
                )
            )
            continue
        signed = signed_form(cp, key)
        if signed is None:
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    None,
                    Tamper.BAD_SIGNATURE,
                    "the checkpoint signature does not verify",
                )
            )
            continue
        valid.append(signed)
        if cp.seq not in by_seq:
            last = entries[-1].seq if entries else 0
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    None,
                    Tamper.DELETED,
                    f"a signed checkpoint covers entry {cp.seq} but the chain ends at {last}",
                )
            )
        elif (entry := by_seq[cp.seq]).entry_hash != cp.head_hash:
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    entry.entry_id,
                    Tamper.MODIFIED,
                    "the chain was rewritten: it differs from a signed checkpoint",
                )
            )
    return problems, valid


def link_problem(prev: Checkpoint | None, cp: Checkpoint) -> tuple[Tamper, str] | None:
    """Why ``cp`` does not follow ``prev`` (``None``: it is the first) in the chain of
    checkpoints; ``None`` when it does."""
    if not cp.linked:
        if prev is not None and prev.linked:
            return Tamper.INSERTED, (
                f"an unlinked checkpoint follows checkpoint {prev.number} (entry {prev.seq}); "
                "only checkpoints signed before linking existed may lack a link"
            )
        return None
    number = cp.number or 0
    expected = (prev.number or 0) + 1 if prev is not None and prev.linked else 1
    after = (
        "the start of the chain"
        if prev is None
        else f"checkpoint {prev.number} (entry {prev.seq})"
        if prev.linked
        else f"the unlinked checkpoint at entry {prev.seq}"
    )
    if number > expected:
        missing = f"{expected}" if number - expected == 1 else f"{expected}-{number - 1}"
        verb = "is" if number - expected == 1 else "are"
        noun = "checkpoint" if number - expected == 1 else "checkpoints"
        return (
            Tamper.DELETED,
            f"{noun} {missing} {verb} missing: checkpoint {number} follows {after}",
        )
    if number < expected:
        if number == expected - 1:
            return Tamper.INSERTED, f"checkpoint {number} repeats: it follows {after}"
        return Tamper.REORDERED, f"checkpoint {number} comes after {after}"
    if cp.prev_hash != (prev.hash if prev is not None else GENESIS):
        if number == 1 and cp.prev_hash != GENESIS:
            return Tamper.DELETED, (
                "checkpoint 1 was signed after an older, unlinked checkpoint that is missing"
            )
        return Tamper.INSERTED, (
            f"checkpoint {number} does not link to {after}: it was not signed after it"
        )
    return None


def link_problems(tenant: str, valid: Sequence[Checkpoint], *, segment: bool) -> list[Problem]:
    """The chain of checkpoints, among those whose signature verifies."""
    problems = []
    prev: Checkpoint | None = None
    for i, cp in enumerate(valid):
        problem = None if segment and i == 0 else link_problem(prev, cp)
        if problem is not None:
            problems.append(Problem(tenant, cp.seq, None, *problem))
        prev = cp
    return problems


def anchor_problems(
    tenant: str,
    entries: Sequence[Envelope],
    valid: Sequence[Checkpoint],
    anchored: Sequence[Checkpoint],
    keys: Mapping[str, VerifyKey],
) -> list[Problem]:
    """Does the database still extend every head the anchor holds?"""
    by_seq = {e.seq: e for e in entries}
    last = entries[-1].seq if entries else 0
    kept = {cp.signature for cp in valid}
    problems = []
    beyond = [a for a in anchored if a.seq > last]
    for a in sorted(anchored, key=lambda c: c.seq):
        key = keys.get(a.key_id)
        if key is None or signed_form(a, key) is None:
            why = f"unknown key {a.key_id}" if key is None else "a signature that does not verify"
            problems.append(
                Problem(tenant, a.seq, None, Tamper.BAD_SIGNATURE, f"the anchored head has {why}")
            )
        elif a.seq > last:
            if a is max(beyond, key=lambda c: c.seq):
                problems.append(
                    Problem(
                        tenant,
                        a.seq,
                        None,
                        Tamper.DELETED,
                        f"the chain ends at {last} but the anchor holds its signed head at "
                        f"{a.seq}: its tail was deleted",
                    )
                )
        elif (entry := by_seq.get(a.seq)) is None or entry.entry_hash != a.head_hash:
            problems.append(
                Problem(
                    tenant,
                    a.seq,
                    None if entry is None else entry.entry_id,
                    Tamper.MODIFIED,
                    "the chain was rewritten: it differs from a head anchored outside the database",
                )
            )
        elif a.signature not in kept:
            problems.append(
                Problem(
                    tenant,
                    a.seq,
                    None,
                    Tamper.DELETED,
                    f"the checkpoint at entry {a.seq}, held by the anchor, was removed "
                    "from the database",
                )
            )
    return problems
