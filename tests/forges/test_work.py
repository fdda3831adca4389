"""`Work` and its deploy targets: the stored form of a waiting deployment stays readable."""

from __future__ import annotations

import pytest

from bot.forges import DeployKind, DeployTarget

#: entries as deploy requests have stored them in `details["waiting"]` since the first gates
STORED = [
    {"kind": "protection-rule", "run_id": 77},
    {"kind": "approval", "deployment_id": 15},
    {"kind": "manual-job", "job_ids": [380, 381], "pipeline_id": 31},
    {"kind": "manual-job", "job_ids": [380], "pipeline_id": None},
]


@pytest.mark.parametrize("entry", STORED)
def test_a_stored_entry_reads_back_and_is_written_the_same(entry: dict[str, object]) -> None:
    target = DeployTarget.from_json(entry)
    assert target.to_json() == entry


def test_the_stored_form_keeps_only_what_answering_needs() -> None:
    blocked = DeployTarget(DeployKind.APPROVAL, deployment_id=15, job_ids=(380,))
    assert blocked.to_json() == {"kind": "approval", "deployment_id": 15}
    assert DeployTarget.from_json(blocked.to_json()).kind is DeployKind.APPROVAL
