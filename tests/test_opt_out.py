"""Opting out of marketing texts: a marketing SMS or WhatsApp message reaches a real local provider
webhook with "Reply STOP to opt out" (in Chinese for a Chinese text), service messages and other
channels without it; a signed inbound STOP (UNSUBSCRIBE, 退订) through the live server withdraws
marketing consent on that channel in the consent ledger, once, without opening a conversation, and the
next marketing text is refused. Real SQLite and PostgreSQL, real HTTP both ways."""

# ruff: noqa: F811  (the provider fixture imported from test_provider_webhooks is a parameter here)
from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select

from tests.factories import SYSTEM, make_source
from tests.test_provider_webhooks import (  # noqa: F401  (provider: a fixture)
    T0,
    Provider,
    customer,
    grant,
    provider,
    row,
    run_worker,
    text_message,
    with_provider,
)
from tests.test_service_channels import signed_post, sms
from threadline.config import Settings
from threadline.messaging import REFUSED, send_message
from threadline.privacy import check_send
from threadline.service.opt_out import is_opt_out
from threadline.storage import Database
from threadline.storage.models import ConsentRecord, Conversation


def posted_texts(box: Provider) -> dict[str, str]:
    return {json.loads(body)["message_id"]: json.loads(body)["text"] for _, body in box.posts}


def test_marketing_texts_carry_the_opt_out_footer_and_service_texts_do_not(
    db: Database, settings: Settings, provider: tuple[Provider, int]
) -> None:
    box, port = provider
    texts = with_provider(settings, port).model_copy(
        update={"wechat_webhook_url": f"http://127.0.0.1:{port}/send"}
    )
    ann = customer(db, texts, "ann", phone="+8613800138000", first_name="Ann", wechat_openid="o-ann-1")
    for channel in ("sms", "whatsapp", "wechat"):
        grant(db, ann, "marketing", channel)

    def ask(channel: str, purpose: str, body: str) -> str:
        sent = send_message(
            db, texts, SYSTEM, ann, purpose=purpose, subject="", body_text=body, channel=channel, now=T0
        )
        return f"threadline-{sent.id}"

    english = ask("sms", "marketing", "Spring sale: 20% off")
    chinese = ask("whatsapp", "marketing", "春季促销，全场八折")
    service = ask("sms", "service", "Your parcel ships today")
    wechat = ask("wechat", "marketing", "Spring sale: 20% off")
    already = ask("sms", "marketing", "Last day!\nReply STOP to opt out")
    run_worker(db, texts)

    sent = posted_texts(box)
    assert sent[english] == "Spring sale: 20% off\nReply STOP to opt out"
    assert sent[chinese] == "春季促销，全场八折\n回复退订不再接收"
    assert sent[service] == "Your parcel ships today"  # a service message: no footer
    assert sent[wechat] == "Spring sale: 20% off"  # WeChat has its own unfollow
    assert sent[already] == "Last day!\nReply STOP to opt out"  # not twice


def test_only_the_keyword_alone_is_an_opt_out() -> None:
    for text in ("STOP", "stop", " Stop! ", "ＳＴＯＰ", "Unsubscribe.", "退订", "退订。", "TD"):
        assert is_opt_out(text), text
    for text in ("please stop sending the wrong size", "Cancel", "stopped", "不要退订", ""):
        assert not is_opt_out(text), text


def consent_rows(db: Database, profile_id: str) -> list[tuple[str, str, str, str]]:
    with db.read() as session:
        return [
            (r.purpose, r.channel, r.status, r.source)
            for r in session.scalars(
                select(ConsentRecord).where(ConsentRecord.profile_id == profile_id).order_by(ConsentRecord.id)
            )
        ]


def conversation_count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Conversation)) or 0)


def test_a_stop_reply_withdraws_marketing_consent_on_that_channel(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    key = make_source(db, "twilio", "sms").write_key
    bo = customer(db, settings, "bo", phone="+14155550134", first_name="Bo")
    for channel in ("sms", "whatsapp"):
        grant(db, bo, "marketing", channel)

    # The provider writes the number its own way; the keyword with its punctuation.
    answer = signed_post(http, "/webhooks/twilio", key, sms("Stop!", "SM-stop-1", sender="(415) 555-0134"))
    assert answer.status_code == 200 and answer.json() == {"status": "opted_out"}
    assert conversation_count(db) == 0  # an instruction, not a request for the desk
    withdrawn = ("marketing", "sms", "withdrawn", "unsubscribe")
    assert consent_rows(db, bo)[-1] == withdrawn
    with db.read() as session:
        evidence = session.scalars(select(ConsentRecord.evidence).order_by(ConsentRecord.id.desc())).first()
        assert evidence == {"via": "sms reply", "keyword": "Stop!", "message_id": "SM-stop-1"}
        assert not check_send(session, bo, "sms", "marketing").allowed
        assert check_send(session, bo, "whatsapp", "marketing").allowed  # that channel only
        assert check_send(session, bo, "sms", "service").allowed  # replies to their questions still go

    # The provider redelivers it: recorded once.
    again = signed_post(http, "/webhooks/twilio", key, sms("Stop!", "SM-stop-1", sender="+14155550134"))
    assert again.json() == {"status": "opted_out"}
    assert consent_rows(db, bo).count(withdrawn) == 1
    assert row(db, text_message(db, settings, bo)).status == REFUSED  # the next campaign text

    # 退订 on WhatsApp withdraws WhatsApp; a sentence with "stop" in it is a message for an agent.
    chinese = signed_post(
        http, "/webhooks/twilio", key, sms("退订", "WA-1", channel="whatsapp", sender="+14155550134")
    )
    assert chinese.json() == {"status": "opted_out"}
    assert consent_rows(db, bo)[-1] == ("marketing", "whatsapp", "withdrawn", "unsubscribe")
    sentence = signed_post(http, "/webhooks/twilio", key, sms("please stop sending the wrong size", "SM-2"))
    assert sentence.status_code == 201 and conversation_count(db) == 1

    # A number nobody has: nothing to withdraw, still answered.
    stranger = signed_post(http, "/webhooks/twilio", key, sms("STOP", "SM-3", sender="+14155550199"))
    assert stranger.json() == {"status": "opted_out"} and conversation_count(db) == 1
