"""Redaction rules reach every event that carries authorization_details, and only the trail:
the person, the client and the tokens still see the values."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

from grantline.audit.redaction import HASH_PREFIX
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import Agent, csrf_of, query_of

PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate"],
    "instructedAmount": {"currency": "EUR", "amount": "42.00"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Invoice 17",
}
IBAN = PAYMENT["creditorAccount"]["iban"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    types = dict(settings.authorization_details_types)
    types["payment_initiation"] = dataclasses.replace(
        types["payment_initiation"],
        audit={
            "creditorAccount.iban": "mask:4",
            "creditorName": "hash",
            "remittanceInformationUnstructured": "drop",
        },
    )
    return dataclasses.replace(settings, authorization_details_types=types)


@pytest.fixture
async def payer(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        client = await tx.get_client("agent")
        assert client is not None
        await tx.update_client(
            dataclasses.replace(client, authorization_details_types=("payment_initiation",))
        )


async def test_the_trail_keeps_redacted_items_and_the_tokens_keep_the_values(
    agent: Agent, payer: None, store: SQLiteStore
) -> None:
    pushed = await agent.push(authorization_details=json.dumps([PAYMENT]))
    interaction = await agent.open(pushed.request_uri)
    await agent.login(interaction)
    page = await agent.http.get(interaction)
    assert IBAN in page.text  # the person reads the whole IBAN
    decided = await agent.http.post(
        f"{interaction}/decision",
        data={"csrf_token": csrf_of(page.text), "decision": "approve", "detail_0": "on"},
    )
    code = query_of(decided.headers["location"])["code"]
    tokens = (await agent.exchange(code, pushed.verifier)).json()
    assert tokens["authorization_details"] == [PAYMENT]

    async with store.reader() as tx:
        trail = await tx.tail(50)
    by_type = {e.type: e for e in trail}
    masked = "*" * (len(IBAN) - 4) + IBAN[-4:]
    for type_ in ("pushed_request.accepted", "code.issued", "token.issued"):
        (item,) = by_type[type_].data["authorization_details"]
        assert item["creditorAccount"] == {"iban": masked}, type_
        assert item["creditorName"].startswith(HASH_PREFIX), type_
        assert "remittanceInformationUnstructured" not in item, type_
        assert item["instructedAmount"] == PAYMENT["instructedAmount"], type_
    shown = by_type["consent.shown"].data
    assert IBAN not in shown["document"] and masked in shown["document"]
    assert "Invoice 17" not in shown["document"]
    # The digest is of the document the person saw, not of the redacted copy.
    assert shown["sha256"] != hashlib.sha256(shown["document"].encode()).hexdigest()
    assert by_type["consent.decided"].data["consent_sha256"] == shown["sha256"]
    for event in trail:
        assert IBAN not in json.dumps(event.data), event.type


async def test_without_rules_the_consent_document_is_kept_as_shown(
    agent: Agent, store: SQLiteStore, settings: Settings
) -> None:
    await add_client(store, client_id="plain", name="Plain Agent")
    code, _ = await Agent(agent.http, "plain").code_for(scope="inbox.read")
    assert code
    async with store.reader() as tx:
        (shown,) = [e for e in await tx.tail(50) if e.type == "consent.shown"]
    assert shown.data["sha256"] == hashlib.sha256(shown.data["document"].encode()).hexdigest()
