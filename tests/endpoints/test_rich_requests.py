"""Rich Authorization Requests (RFC 9396) and resource indicators (RFC 8707), end to end:
refusals at PAR and /authorize, the consent page, partial consent, and what the tokens carry."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from grantline.models import AuditEvent, Client, User
from grantline.protocol.rar import MAX_DEPTH, MAX_DETAILS
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client, build_app
from tests.helpers import (
    ISSUER,
    REDIRECT_URI,
    Agent,
    FrozenClock,
    csrf_of,
    new_verifier,
    query_of,
)

#: RFC 9396 section 2, verbatim.
PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status", "cancel"],
    "locations": ["https://example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Ref Number Merchant",
}
PAYMENT_SENTENCE = (
    "Pay 123.50 EUR to Merchant A (IBAN DE02100100109307118603) with the reference "
    "Ref Number Merchant; allowed actions: initiate, status, cancel; "
    "at https://example.com/payments"
)
FILES: dict[str, Any] = {
    "type": "file_access",
    "actions": ["read", "list"],
    "locations": ["/reports"],
}
FILES_SENTENCE = "Read, list files under /reports"
DEPLOY: dict[str, Any] = {
    "type": "deployment",
    "service": "api",
    "version": "1.2.3",
    "environment": "staging",
}
DEPLOY_SENTENCE = "Deploy api version 1.2.3 to staging"

PAYMENTS_API = "https://api.example/payments"
FILES_API = "https://api.example/files"


def as_json(*items: Any) -> str:
    return json.dumps(list(items))


def push_data(
    agent: Agent,
    verifier: str,
    details: str | None = None,
    resources: Iterable[str] = (),
    **overrides: str | None,
) -> dict[str, Any]:
    data: dict[str, Any] = dict(agent.params(verifier, authorization_details=details, **overrides))
    resources = list(resources)
    if resources:
        data["resource"] = resources
    return data


async def refused_push(
    agent: Agent,
    details: str | None = None,
    resources: Iterable[str] = (),
    **overrides: str | None,
) -> dict[str, str]:
    response = await agent.push_raw(
        push_data(agent, new_verifier(), details, resources, **overrides)
    )
    assert response.status_code == 400, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, str] = response.json()
    assert set(body) == {"error", "error_description"}
    return body


async def open_consent(
    agent: Agent,
    details: str | None = None,
    resources: Iterable[str] = (),
    **overrides: str | None,
) -> tuple[str, str]:
    """Push, open and sign in; returns (interaction path, verifier)."""
    verifier = new_verifier()
    response = await agent.push_raw(push_data(agent, verifier, details, resources, **overrides))
    assert response.status_code == 201, response.text
    interaction = await agent.open(response.json()["request_uri"])
    assert (await agent.login(interaction)).status_code == 303
    return interaction, verifier


async def decide(
    agent: Agent, interaction: str, checked: Iterable[str], decision: str = "approve"
) -> httpx.Response:
    """Post the consent form with exactly the ``checked`` checkbox names ticked."""
    page = await agent.http.get(interaction)
    assert page.status_code == 200, page.text
    form = {"csrf_token": csrf_of(page.text), "decision": decision}
    form.update({name: "on" for name in checked})
    return await agent.http.post(f"{interaction}/decision", data=form)


async def code_for(
    agent: Agent,
    details: str | None = None,
    checked: Iterable[int] = (),
    resources: Iterable[str] = (),
    **overrides: str | None,
) -> tuple[str, str]:
    interaction, verifier = await open_consent(agent, details, resources, **overrides)
    response = await decide(agent, interaction, [f"detail_{i}" for i in checked])
    assert response.status_code == 303, response.text
    return query_of(response.headers["location"])["code"], verifier


async def tokens_for(
    agent: Agent,
    details: str | None = None,
    checked: Iterable[int] = (),
    resources: Iterable[str] = (),
    token_params: dict[str, str] | None = None,
    **overrides: str | None,
) -> dict[str, Any]:
    code, verifier = await code_for(agent, details, checked, resources, **overrides)
    response = await agent.exchange(code, verifier, **(token_params or {}))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(agent: Agent, refresh_token: str, **extra: str) -> httpx.Response:
    return await agent.token(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    )


async def decoded(http: httpx.AsyncClient, token: str) -> jwt.Token:
    jwks = (await http.get("/jwks")).json()
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])


async def introspect(agent: Agent, token: str) -> dict[str, Any]:
    response = await agent.http.post(
        "/introspect", data={"token": token}, auth=(agent.client_id, agent.secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def audit(store: SQLiteStore, type_: str) -> list[AuditEvent]:
    async with store.reader() as tx:
        return [e for e in await tx.tail(200) if e.type == type_]


def nested(levels: int) -> str:
    return as_json({"type": "deployment", "x": json.loads("[" * levels + "]" * levels)})


# -- refusals at the PAR endpoint -------------------------------------------------------------

REFUSED_DETAILS: list[tuple[str, list[str]]] = [
    ("{not json", ["not valid JSON"]),
    (json.dumps(PAYMENT), ["must be a JSON array"]),
    ("[]", ["must not be empty"]),
    (as_json(PAYMENT, "payment_initiation"), ["authorization_details[1] must be a JSON object"]),
    (as_json({"actions": ["read"]}), ["authorization_details[0].type is required"]),
    (as_json({"type": ""}), ["authorization_details[0].type is required"]),
    (
        as_json(FILES, {**FILES, "locations": "/reports"}),
        ["authorization_details[1].locations must be a non-empty array of strings"],
    ),
    (
        as_json({**FILES, "actions": []}),
        ["authorization_details[0].actions must be a non-empty array of strings"],
    ),
    (
        as_json({**FILES, "datatypes": [1]}),
        ["authorization_details[0].datatypes must be a non-empty array of strings"],
    ),
    (
        as_json({**FILES, "privileges": [""]}),
        ["authorization_details[0].privileges must be a non-empty array of strings"],
    ),
    (
        as_json({**FILES, "identifier": 42}),
        ["authorization_details[0].identifier must be a string"],
    ),
    ('[{"type": "file_access", "type": "payment_initiation"}]', ["repeats the key 'type'"]),
    ('[{"type": "deployment", "service": NaN}]', ["contains NaN, which is not JSON"]),
    (as_json(*[DEPLOY] * (MAX_DETAILS + 1)), [f"more than {MAX_DETAILS} items"]),
    (nested(MAX_DEPTH), ["nested too deeply"]),
    (as_json(DEPLOY, {"type": "wire_transfer"}), ["authorization_details[1].type", "unknown"]),
    (
        as_json(DEPLOY, {**PAYMENT, "instructedAmount": {"currency": "EUR", "amount": "12,50"}}),
        ["authorization_details[1]", "instructedAmount", "12,50"],
    ),
    (
        as_json(DEPLOY, {k: v for k, v in PAYMENT.items() if k != "creditorAccount"}),
        ["authorization_details[1]", "creditorAccount"],
    ),
    (
        as_json({**PAYMENT, "ultimateCreditor": "Mallory"}),
        ["authorization_details[0]", "ultimateCreditor"],
    ),
    (
        as_json({**DEPLOY, "environment": "Prod"}),
        ["authorization_details[0].environment", "Prod"],
    ),
]


@pytest.mark.parametrize(("details", "fragments"), REFUSED_DETAILS)
async def test_malformed_or_invalid_details_are_refused_at_par(
    agent: Agent, store: SQLiteStore, details: str, fragments: list[str]
) -> None:
    body = await refused_push(agent, details)
    assert body["error"] == "invalid_authorization_details"
    for fragment in fragments:
        assert fragment in body["error_description"], body
    (event,) = await audit(store, "pushed_request.refused")
    assert event.data["error"] == "invalid_authorization_details"
    async with store.reader() as tx:
        assert not [e for e in await tx.tail(50) if e.type == "pushed_request.accepted"]


async def test_a_type_the_client_may_not_use_is_refused(
    http: httpx.AsyncClient, store: SQLiteStore
) -> None:
    await add_client(store, client_id="filer", authorization_details_types=("file_access",))
    agent = Agent(http, "filer")
    body = await refused_push(agent, as_json(FILES, PAYMENT))
    assert body == {
        "error": "invalid_authorization_details",
        "error_description": (
            "authorization_details[1].type 'payment_initiation' is not allowed for this client."
        ),
    }
    accepted = await agent.push_raw(push_data(agent, new_verifier(), as_json(FILES)))
    assert accepted.status_code == 201, accepted.text


async def test_the_rfc_9396_payment_example_is_accepted(agent: Agent) -> None:
    response = await agent.push_raw(push_data(agent, new_verifier(), as_json(PAYMENT)))
    assert response.status_code == 201, response.text
    assert response.json()["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")


async def test_a_request_may_carry_only_details_and_no_scope(agent: Agent) -> None:
    body = await tokens_for(agent, as_json(DEPLOY), checked=[0], scope=None)
    assert body["authorization_details"] == [DEPLOY]
    assert "scope" not in (await decoded(agent.http, body["access_token"])).claims


async def test_a_token_response_without_scopes_has_no_empty_scope(agent: Agent) -> None:
    body = await tokens_for(agent, as_json(DEPLOY), checked=[0], scope=None)
    assert body.get("scope", "absent") != ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("authorization_details", as_json(PAYMENT)),
        ("resource", PAYMENTS_API),
        ("scope", "invoices.pay"),
    ],
)
async def test_the_browser_cannot_add_details_or_resources_to_a_pushed_request(
    agent: Agent, store: SQLiteStore, name: str, value: str
) -> None:
    pushed = await agent.push(authorization_details=as_json(FILES))
    response = await agent.authorize(pushed.request_uri, **{name: value})
    assert response.status_code == 400
    assert '<code id="error-code">invalid_request</code>' in response.text
    assert f"differ from the pushed request: {name}." in response.text
    assert await audit(store, "authorization_request.substitution_refused")
    # The pushed request itself is intact and still usable as pushed.
    assert (await agent.authorize(pushed.request_uri)).status_code == 303


# -- refusals at /authorize for plain requests -------------------------------------------------


@pytest.fixture
async def relaxed(
    settings: Settings, store: SQLiteStore, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A server that accepts plain (unpushed) authorization requests."""
    app = build_app(
        dataclasses.replace(settings, require_pushed_authorization_requests=False), store, clock
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        yield http


async def plain(
    http: httpx.AsyncClient, details: str | None, resources: Iterable[str] = ()
) -> httpx.Response:
    agent = Agent(http)
    params: list[tuple[str, Any]] = [("client_id", "agent")]
    params += list(agent.params("v" * 43, authorization_details=details).items())
    params += [("resource", r) for r in resources]
    return await http.get("/authorize", params=params)


@pytest.mark.parametrize(
    ("details", "fragment"),
    [
        ("[", "not valid JSON"),
        (as_json({"type": "wire_transfer"}), "authorization_details[0].type 'wire_transfer'"),
        (
            as_json(FILES, {**PAYMENT, "instructedAmount": {"currency": "EUR", "amount": "12,50"}}),
            "authorization_details[1].instructedAmount.amount",
        ),
    ],
)
async def test_plain_requests_with_bad_details_redirect_the_error(
    relaxed: httpx.AsyncClient, client: Client, store: SQLiteStore, details: str, fragment: str
) -> None:
    response = await plain(relaxed, details)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["error"] == "invalid_authorization_details"
    assert fragment in query["error_description"]
    assert query["state"] == "state-123" and query["iss"] == ISSUER
    (event,) = await audit(store, "authorization_request.refused")
    assert event.data["error"] == "invalid_authorization_details"


async def test_plain_requests_with_a_foreign_resource_redirect_invalid_target(
    relaxed: httpx.AsyncClient, client: Client
) -> None:
    response = await plain(relaxed, None, resources=[PAYMENTS_API])
    assert response.status_code == 303
    assert query_of(response.headers["location"])["error"] == "invalid_target"


async def test_plain_requests_with_valid_details_reach_the_consent_page(
    relaxed: httpx.AsyncClient, client: Client, user: User
) -> None:
    response = await plain(relaxed, as_json(PAYMENT))
    assert response.status_code == 303
    interaction = response.headers["location"]
    assert interaction.startswith("/interaction/")
    agent = Agent(relaxed)
    await agent.login(interaction)
    page = await relaxed.get(interaction)
    assert '<span class="value">Merchant A</span>' in page.text


# -- the consent page -------------------------------------------------------------------------


def detail_block(page: str, index: int) -> str:
    match = re.search(rf'<li class="detail" id="detail-{index}">(.*?)</li>', page, re.DOTALL)
    assert match, f"no item {index} on the page"
    return match.group(1)


async def test_consent_lists_each_item_as_a_checked_sentence_with_its_json(
    agent: Agent, store: SQLiteStore
) -> None:
    items = (PAYMENT, FILES, DEPLOY)
    interaction, _ = await open_consent(agent, as_json(*items))
    page = (await agent.http.get(interaction)).text
    sentences = (PAYMENT_SENTENCE, FILES_SENTENCE, DEPLOY_SENTENCE)
    for index, (item, sentence) in enumerate(zip(items, sentences, strict=True)):
        block = detail_block(page, index)
        assert f'<input type="checkbox" name="detail_{index}" value="on" checked>' in block
        shown = re.search(r'<span class="sentence">(.*)</span></label>', block, re.DOTALL)
        assert shown
        assert html.unescape(re.sub(r"<[^>]+>", "", shown.group(1))) == sentence
        # Every value from the client is set off from the template's words.
        assert '<span class="value">' in shown.group(1)
        raw = re.search(r"<details>.*?<pre>(.*?)</pre></details>", block, re.DOTALL)
        assert raw, block
        assert json.loads(html.unescape(raw.group(1))) == item
    assert 'id="detail-3"' not in page


async def test_consent_page_lists_the_requested_resources(agent: Agent, store: SQLiteStore) -> None:
    await add_client(store, client_id="rs", resources=(PAYMENTS_API, FILES_API))
    rs = Agent(agent.http, "rs")
    interaction, _ = await open_consent(rs, resources=[PAYMENTS_API, FILES_API])
    page = (await agent.http.get(interaction)).text
    assert f'<code class="resource">{PAYMENTS_API}</code>' in page
    assert f'<code class="resource">{FILES_API}</code>' in page


async def test_markup_in_every_client_controlled_detail_field_is_escaped(agent: Agent) -> None:
    payment = {
        **PAYMENT,
        "creditorName": "<script>alert('creditor')</script>",
        "remittanceInformationUnstructured": '"><img src=x onerror=alert(1)>',
    }
    files = {
        **FILES,
        "locations": ["</pre></details><script>alert('loc')</script>", "<b>/x</b>"],
        "identifier": "<iframe src=//evil.example>",
    }
    interaction, _ = await open_consent(agent, as_json(payment, files))
    page = (await agent.http.get(interaction)).text
    lowered = page.lower()
    for raw in ("<script", "<img", "<iframe", "<b>/x", "</pre></details><"):
        assert raw not in lowered, raw
    assert "&lt;script&gt;alert(&#39;creditor&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;" in page
    # The structure survived: two items, each with one checkbox and one JSON block.
    assert page.count('type="checkbox"') == 2
    assert page.count("<details>") == 2


async def test_the_consent_shown_event_records_the_sentences_and_their_digest(
    agent: Agent, store: SQLiteStore
) -> None:
    interaction, _ = await open_consent(agent, as_json(PAYMENT, FILES))
    await agent.http.get(interaction)
    shown = (await audit(store, "consent.shown"))[-1]
    document = shown.data["document"]
    # The document quotes each client value, so an auditor can tell them from the wording.
    assert (
        "- Item 1: Pay \u201c123.50\u201d \u201cEUR\u201d to \u201cMerchant A\u201d (IBAN "
        "\u201cDE02100100109307118603\u201d) with the reference \u201cRef Number Merchant\u201d"
    ) in document
    assert "- Item 2: \u201cRead, list\u201d files under \u201c/reports\u201d [file_access]" in (
        document
    )
    assert "- Read messages in your inbox [inbox.read]" in document
    assert shown.data["sha256"] == hashlib.sha256(document.encode("utf-8")).hexdigest()
    await decide(agent, interaction, ["detail_0", "detail_1"])
    (decided,) = await audit(store, "consent.decided")
    assert decided.data["consent_sha256"] == shown.data["sha256"]


async def test_narrowing_the_clients_types_after_the_push_refuses_the_consent_page(
    agent: Agent, store: SQLiteStore, client: Client
) -> None:
    interaction, _ = await open_consent(agent, as_json(PAYMENT))
    async with store.transaction() as tx:
        await tx.update_client(
            dataclasses.replace(client, authorization_details_types=("file_access",))
        )
    page = await agent.http.get(interaction)
    assert page.status_code == 400
    assert "not allowed for this client" in page.text
    assert 'name="detail_0"' not in page.text


# -- partial consent --------------------------------------------------------------------------


async def test_partial_consent_grants_exactly_the_checked_item(
    agent: Agent, store: SQLiteStore, user: User, clock: FrozenClock
) -> None:
    body = await tokens_for(agent, as_json(PAYMENT, FILES), checked=[0])
    assert body["authorization_details"] == [PAYMENT]
    assert body["scope"] == "inbox.read"
    token = await decoded(agent.http, body["access_token"])
    async with store.reader() as tx:
        (key,) = await tx.list_signing_keys()
    assert token.header == {"typ": "at+jwt", "alg": "ES256", "kid": key.kid}
    claims = token.claims
    assert claims["authorization_details"] == [PAYMENT]
    assert claims["iss"] == ISSUER
    assert claims["sub"] == user.user_id
    assert claims["aud"] == ISSUER
    assert claims["iat"] == clock.now
    assert claims["exp"] == clock.now + 600
    assert claims["client_id"] == "agent"
    assert claims["scope"] == "inbox.read"
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    (decided,) = await audit(store, "consent.decided")
    assert decided.data["decision"] == "approved"
    assert decided.data["approved_items"] == [0]
    assert decided.data["declined_items"] == [1]
    (issued,) = await audit(store, "code.issued")
    assert issued.data["authorization_details"] == [PAYMENT]
    (minted,) = await audit(store, "token.issued")
    assert minted.data["authorization_details"] == [PAYMENT]
    assert minted.data["access_token_jti"] == claims["jti"]


async def test_unchecking_the_first_item_keeps_only_the_second(agent: Agent) -> None:
    body = await tokens_for(agent, as_json(PAYMENT, FILES, DEPLOY), checked=[1, 2])
    assert body["authorization_details"] == [FILES, DEPLOY]
    claims = (await decoded(agent.http, body["access_token"])).claims
    assert claims["authorization_details"] == [FILES, DEPLOY]


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"detail_0": "yes"},
        {"detail_2": "on", "detail_-1": "on"},
        {"detail_00": "on", "detail_ 0": "on"},
    ],
)
async def test_approving_with_nothing_checked_is_access_denied(
    agent: Agent, store: SQLiteStore, form: dict[str, str]
) -> None:
    interaction, _ = await open_consent(agent, as_json(PAYMENT, FILES))
    csrf = csrf_of((await agent.http.get(interaction)).text)
    response = await agent.http.post(
        f"{interaction}/decision", data={"csrf_token": csrf, "decision": "approve", **form}
    )
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["error"] == "access_denied"
    assert "code" not in query
    assert query["state"] == "state-123" and query["iss"] == ISSUER
    (decided,) = await audit(store, "consent.decided")
    assert decided.data["decision"] == "denied"
    assert decided.data["approved_items"] == []
    assert decided.data["declined_items"] == [0, 1]
    assert not await audit(store, "code.issued")
    # The request is used up: nothing can be approved by posting again.
    again = await agent.http.post(
        f"{interaction}/decision",
        data={"csrf_token": csrf, "decision": "approve", "detail_0": "on"},
    )
    assert again.status_code == 400
    assert not await audit(store, "code.issued")


async def test_denying_ignores_checked_items(agent: Agent, store: SQLiteStore) -> None:
    interaction, _ = await open_consent(agent, as_json(PAYMENT))
    response = await decide(agent, interaction, ["detail_0"], decision="deny")
    assert query_of(response.headers["location"])["error"] == "access_denied"
    (decided,) = await audit(store, "consent.decided")
    assert decided.data["approved_items"] == [] and decided.data["declined_items"] == [0]


# -- refresh, introspection and narrowing at the token endpoint -------------------------------


async def test_refresh_and_introspection_carry_exactly_the_approved_items(agent: Agent) -> None:
    body = await tokens_for(agent, as_json(PAYMENT, FILES, DEPLOY), checked=[0, 2])
    approved = [PAYMENT, DEPLOY]
    assert (await introspect(agent, body["access_token"]))["authorization_details"] == approved
    assert (await introspect(agent, body["refresh_token"]))["authorization_details"] == approved
    refreshed = await refresh(agent, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["authorization_details"] == approved
    claims = (await decoded(agent.http, renewed["access_token"])).claims
    assert claims["authorization_details"] == approved
    assert (await introspect(agent, renewed["access_token"]))["authorization_details"] == approved


@pytest.mark.parametrize(
    "asked",
    [
        [FILES],
        [PAYMENT, FILES],
        [{**PAYMENT, "instructedAmount": {"currency": "EUR", "amount": "99999.00"}}],
        [{**PAYMENT, "actions": ["initiate", "status", "cancel", "refund"]}],
    ],
)
async def test_refresh_cannot_ask_for_details_that_were_not_granted(
    agent: Agent, asked: list[dict[str, Any]]
) -> None:
    body = await tokens_for(agent, as_json(PAYMENT, FILES), checked=[0])
    response = await refresh(agent, body["refresh_token"], authorization_details=as_json(*asked))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_authorization_details"
    assert "was not granted" in response.json()["error_description"]
    # A refused narrowing does not burn the refresh token.
    assert (await refresh(agent, body["refresh_token"])).status_code == 200


async def test_refresh_may_ask_for_a_subset_and_later_for_all_again(agent: Agent) -> None:
    body = await tokens_for(agent, as_json(PAYMENT, FILES), checked=[0, 1])
    narrowed = await refresh(agent, body["refresh_token"], authorization_details=as_json(FILES))
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["authorization_details"] == [FILES]
    claims = (await decoded(agent.http, narrowed.json()["access_token"])).claims
    assert claims["authorization_details"] == [FILES]
    widened = await refresh(agent, narrowed.json()["refresh_token"])
    assert widened.json()["authorization_details"] == [PAYMENT, FILES]


async def test_refresh_with_malformed_details_is_refused(agent: Agent) -> None:
    body = await tokens_for(agent, as_json(PAYMENT), checked=[0])
    response = await refresh(agent, body["refresh_token"], authorization_details="[]")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_authorization_details",
        "error_description": "authorization_details must not be empty.",
    }


async def test_code_exchange_may_narrow_the_details_but_not_widen_them(agent: Agent) -> None:
    code, verifier = await code_for(agent, as_json(PAYMENT, FILES), checked=[0, 1])
    response = await agent.exchange(code, verifier, authorization_details=as_json(PAYMENT))
    assert response.status_code == 200, response.text
    assert response.json()["authorization_details"] == [PAYMENT]
    code, verifier = await code_for(agent, as_json(PAYMENT, FILES), checked=[0])
    response = await agent.exchange(code, verifier, authorization_details=as_json(FILES))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_authorization_details"


async def test_token_scope_may_narrow_but_not_widen(agent: Agent) -> None:
    body = await tokens_for(agent, as_json(FILES), checked=[0], scope="inbox.read invoices.pay")
    narrowed = await refresh(agent, body["refresh_token"], scope="invoices.pay")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "invoices.pay"
    widened = await refresh(agent, narrowed.json()["refresh_token"], scope="deployments.write")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


# -- resource indicators (RFC 8707) -----------------------------------------------------------


@pytest.fixture
async def rs_agent(http: httpx.AsyncClient, store: SQLiteStore, user: User) -> Agent:
    await add_client(store, client_id="rs", resources=(PAYMENTS_API, FILES_API))
    return Agent(http, "rs")


async def test_two_resources_become_both_audiences(rs_agent: Agent) -> None:
    body = await tokens_for(rs_agent, resources=[PAYMENTS_API, FILES_API])
    claims = (await decoded(rs_agent.http, body["access_token"])).claims
    assert claims["aud"] == [PAYMENTS_API, FILES_API]
    assert (await introspect(rs_agent, body["access_token"]))["aud"] == [PAYMENTS_API, FILES_API]


async def test_the_token_request_may_narrow_the_audience(rs_agent: Agent) -> None:
    body = await tokens_for(
        rs_agent, resources=[PAYMENTS_API, FILES_API], token_params={"resource": FILES_API}
    )
    assert (await decoded(rs_agent.http, body["access_token"])).claims["aud"] == FILES_API
    # The refresh token keeps the whole grant: a later request may return to both.
    widened = await refresh(rs_agent, body["refresh_token"])
    claims = (await decoded(rs_agent.http, widened.json()["access_token"])).claims
    assert claims["aud"] == [PAYMENTS_API, FILES_API]
    narrowed = await refresh(rs_agent, widened.json()["refresh_token"], resource=PAYMENTS_API)
    assert (await decoded(rs_agent.http, narrowed.json()["access_token"])).claims[
        "aud"
    ] == PAYMENTS_API


@pytest.mark.parametrize(
    "resource", [FILES_API, "https://api.example/admin", "https://api.example/payments#x"]
)
async def test_the_token_request_cannot_add_a_resource(rs_agent: Agent, resource: str) -> None:
    code, verifier = await code_for(rs_agent, resources=[PAYMENTS_API])
    response = await rs_agent.exchange(code, verifier, resource=resource)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


async def test_refresh_cannot_add_a_resource(rs_agent: Agent) -> None:
    body = await tokens_for(rs_agent, resources=[PAYMENTS_API])
    response = await refresh(rs_agent, body["refresh_token"], resource=FILES_API)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


async def test_without_a_resource_the_audience_is_the_issuer(rs_agent: Agent) -> None:
    body = await tokens_for(rs_agent)
    assert (await decoded(rs_agent.http, body["access_token"])).claims["aud"] == ISSUER
    response = await refresh(rs_agent, body["refresh_token"], resource=PAYMENTS_API)
    assert response.json()["error"] == "invalid_target"


@pytest.mark.parametrize(
    ("resources", "fragment"),
    [
        ([PAYMENTS_API, "https://api.example/admin"], "may not request the resource"),
        (["/payments"], "not an absolute URI"),
        (["api.example/payments"], "not an absolute URI"),
        ([PAYMENTS_API + "#frag"], "not an absolute URI"),
    ],
)
async def test_bad_or_foreign_resources_are_refused_at_par(
    rs_agent: Agent, resources: list[str], fragment: str
) -> None:
    body = await refused_push(rs_agent, resources=resources)
    assert body["error"] == "invalid_target"
    assert fragment in body["error_description"]


async def test_a_client_without_resources_may_name_none(agent: Agent) -> None:
    body = await refused_push(agent, resources=[PAYMENTS_API])
    assert body == {
        "error": "invalid_target",
        "error_description": f"This client may not request the resource {PAYMENTS_API!r}.",
    }


async def test_a_smuggled_newline_cannot_add_a_resource(rs_agent: Agent) -> None:
    # One value with a newline stays one value, and that value is not a URI.
    body = await refused_push(rs_agent, resources=[f"{PAYMENTS_API}\n{FILES_API}"])
    assert body["error"] == "invalid_target"


async def test_a_smuggled_separator_cannot_add_a_resource(rs_agent: Agent) -> None:
    body = await refused_push(rs_agent, resources=[f"{PAYMENTS_API}\x1f{FILES_API}"])
    assert body["error"] == "invalid_request"


# -- discovery --------------------------------------------------------------------------------


async def test_discovery_advertises_the_new_endpoints_and_types(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert doc["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert doc["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert doc["authorization_details_types_supported"] == [
        "deployment",
        "file_access",
        "payment_initiation",
    ]
    assert doc["jwks_uri"] == f"{ISSUER}/jwks"
    for endpoint in ("introspection", "revocation"):
        assert "client_secret_basic" in doc[f"{endpoint}_endpoint_auth_methods_supported"]
