"""The chapters of a demo customer's history, one per channel (the store and call center are in stores.py).

Times are fractions of the customer's window (History.when): sign-up falls in the first third, so what
needs an account or a known phone (app log-ins, calls, campaigns) comes after it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from threadline.demo.catalog import APP_SCREENS, MOBILE_DEVICES, Product
from threadline.demo.histories import History, product_properties
from threadline.demo.personas import Customer
from threadline.demo.stores import call_center, store, twin

APP_VERSION = "4.2.0"


def write_history(customer: Customer, *, seed: int, locale: str, now: datetime) -> History:
    history = History(customer, seed=seed, locale=locale, now=now)
    signup = history.when(0.1, 0.35)
    for channel, chapter in CHAPTERS:
        if channel in customer.channels:
            chapter(history, signup)
    if customer.twin is not None:
        twin(history, customer.twin)
    return history


def _product(h: History, product: Product) -> dict[str, Any]:
    return {**product_properties(product), "currency": h.catalog.currency}


def _browse(h: History, at: datetime, ids: dict[str, str], *, buy: bool) -> None:
    h.send(
        "website",
        at,
        {
            "type": "page",
            "name": "Home",
            **ids,
            "properties": {"path": "/", "title": "Home"},
            "context": h.web_context("/", "Home"),
        },
    )
    chosen = h.products(h.rng.randint(1, 3))
    for product in chosen:
        at = h.later(at)
        path = f"/p/{product.sku.lower()}"
        props = _product(h, product)
        h.track("website", at, "Product Viewed", ids, props, h.web_context(path, product.name))
        if h.rng.random() < 0.35:
            h.track(
                "website",
                h.later(at, 5, 60),
                "Product Added",
                ids,
                {**props, "quantity": 1},
                h.web_context(path, product.name),
            )
    if buy:
        order = h.order("WEB", chosen)
        h.track(
            "website",
            h.later(at, 120, 600),
            "Order Completed",
            ids,
            order,
            h.web_context("/checkout", "Checkout"),
        )


def web(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    anonymous = {"anonymousId": h.known("anonymous_id", c.web_id)}
    if c.kind == "browser":
        for _ in range(rng.randint(1, 4)):
            _browse(h, h.when(0, 1), anonymous, buy=False)
        return
    for _ in range(rng.randint(1, 3)):
        _browse(h, h.between(h.start, signup), anonymous, buy=False)
    context = h.web_context("/account", "Account")
    if c.kind == "subscriber":
        h.send(
            "website",
            signup,
            {"type": "identify", **anonymous, "traits": {"email": h.email(c.person)}, "context": context},
        )
        h.track(
            "website", h.later(signup, 1, 5), "Newsletter Subscribed", anonymous, {"list": "weekly"}, context
        )
        return
    user = {"userId": h.known("user_id", c.user_id), **anonymous}
    signed_in = signup
    if c.signs_up_on == "web":
        traits = h.traits(c.person, with_phone=rng.random() < 0.75)
        h.send("website", signup, {"type": "identify", **user, "traits": traits, "context": context})
        h.track("website", h.later(signup, 1, 5), "Signed Up", user, {"method": "email"}, context)
    elif rng.random() < 0.75:
        # Signed up in the app, signs in on the web later; the rest stay anonymous visitors here.
        signed_in = h.between(signup, h.end)
        traits = {"email": h.email(c.person)}
        h.send("website", signed_in, {"type": "identify", **user, "traits": traits, "context": context})
        h.track("website", h.later(signed_in, 1, 5), "Signed In", user, {"method": "email"}, context)
    else:
        return
    for _ in range(rng.randint(0, 3)):
        _browse(h, h.between(signed_in, h.end), user, buy=rng.random() < 0.4)


def app(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    maker, model, kind, os_name, os_version = rng.choice(MOBILE_DEVICES)
    context = {
        "device": {
            "id": h.known("device_id", c.device_id),
            "manufacturer": maker,
            "model": model,
            "type": kind,
        },
        "os": {"name": os_name, "version": os_version},
        "app": {"name": "Threadline Shop", "version": APP_VERSION},
        "locale": h.catalog.language,
    }
    anonymous = {"anonymousId": h.known("anonymous_id", c.app_id)}
    at = signup if c.signs_up_on == "app" else h.between(signup, h.end)
    h.track("mobile-app", at, "Application Installed", anonymous, {"version": APP_VERSION}, context)
    h.send("mobile-app", h.later(at), {"type": "screen", "name": "Home", **anonymous, "context": context})
    user = {"userId": h.known("user_id", c.user_id), **anonymous}
    at = h.later(at, 30, 300)
    if c.signs_up_on == "app":
        h.send(
            "mobile-app", at, {"type": "identify", **user, "traits": h.traits(c.person), "context": context}
        )
        h.track("mobile-app", h.later(at, 1, 5), "Signed Up", user, {"method": "phone"}, context)
    else:
        traits = {"email": h.email(c.person)}
        h.send("mobile-app", at, {"type": "identify", **user, "traits": traits, "context": context})
    for _ in range(rng.randint(1, 4)):
        at = h.between(at, h.end)
        h.track(
            "mobile-app", at, "Application Opened", user, {"from_background": rng.random() < 0.5}, context
        )
        for screen in rng.sample(APP_SCREENS, rng.randint(1, 2)):
            at = h.later(at, 5, 90)
            h.send("mobile-app", at, {"type": "screen", "name": screen, **user, "context": context})
        product = h.products(1)[0]
        h.track("mobile-app", h.later(at), "Product Viewed", user, _product(h, product), context)
        if rng.random() < 0.25:
            h.track(
                "mobile-app",
                h.later(at, 60, 600),
                "Order Completed",
                user,
                h.order("APP", [product]),
                context,
            )


def email(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    mailbox = {"traits": {"email": h.email(c.person)}}
    for _ in range(rng.randint(2, 5)):
        campaign_id, subject = rng.choice(h.catalog.campaigns)
        properties = {"campaign_id": campaign_id, "subject": subject}
        at = h.when(0.36, 1)
        h.track("email", at, "Email Received", {}, properties, mailbox)
        if rng.random() < 0.6:
            at = h.later(at, 600, 86_400)
            h.track("email", at, "Email Opened", {}, properties, mailbox)
            if rng.random() < 0.4:
                url = f"{h.catalog.site}/c/{campaign_id}"
                h.track(
                    "email",
                    h.later(at, 5, 120),
                    "Email Link Clicked",
                    {},
                    {**properties, "url": url},
                    mailbox,
                )


def sms(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    for _ in range(rng.randint(1, 3)):
        body = rng.choice(h.catalog.sms)
        handset = {"traits": {"phone": h.phone(c.person, 0)}}
        h.track("sms", h.when(0.36, 1), "SMS Received", {}, {"body": body}, handset)


def social(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    at = h.when(0.2, 0.9)
    ids: dict[str, str] = {}
    if h.locale == "zh_CN":
        platform = "wechat"
        openid = h.known("wechat_openid", c.social_id)
        context: dict[str, Any] = {"traits": {"wechat_openid": openid}}
        h.track(
            "social",
            at,
            "WeChat Followed",
            ids,
            {"platform": platform, "account": "Threadline 官方号"},
            context,
        )
        if rng.random() < 0.7:
            # Binding the phone in the mini-program is what ties a WeChat follower to a member.
            bound = {"traits": {"wechat_openid": openid, "phone": h.phone(c.person, 1)}}
            h.track("social", h.later(at, 60, 3600), "Member Bound", ids, {"platform": platform}, bound)
    else:
        platform = rng.choice(("instagram", "facebook"))
        if rng.random() < 0.5:
            context = {"traits": {"email": h.email(c.person)}}  # shared in a lead form or the DM
        else:
            context = {}
            ids = {"anonymousId": h.known("anonymous_id", f"{platform}:{c.social_id}")}
    for _ in range(rng.randint(1, 3)):
        at = h.between(at, h.end)
        properties = {"platform": platform, "direction": "inbound", "text": rng.choice(h.catalog.social)}
        h.track("social", at, "Social Message Sent", ids, properties, context)


def chat(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    for _ in range(rng.randint(1, 2)):
        at = h.when(0.2, 1)
        ids = {"anonymousId": h.known("anonymous_id", c.web_id)}
        context = h.web_context("/help", "Help")
        if c.kind != "browser" and rng.random() < 0.6:
            context["traits"] = {"email": h.email(c.person)}  # typed into the pre-chat form
        topic = rng.choice(h.catalog.chat_topics)
        h.track("chat", at, "Chat Started", ids, {"topic": topic, "widget": "website"}, context)
        ended = {"topic": topic, "duration_seconds": rng.randint(60, 1500), "rating": rng.randint(2, 5)}
        h.track("chat", h.later(at, 120, 1500), "Chat Ended", ids, ended, context)


Chapter = Callable[[History, datetime], None]
CHAPTERS: tuple[tuple[str, Chapter], ...] = (
    ("web", web),
    ("app", app),
    ("store", store),
    ("call_center", call_center),
    ("email", email),
    ("sms", sms),
    ("social", social),
    ("chat", chat),
)
