"""The survey's words (an email, or a short text for SMS, WhatsApp, WeChat, social and the chat), in the
conversation's language when Threadline has them (English otherwise).

The customer is not a workspace user, so the web catalogs (which follow a reader's preference) do not
apply; the texts live here, next to the only place that sends them. Messaging renders subject and
bodies as templates, so no text here may hold `{{` or `{%`.
"""

from __future__ import annotations

from html import escape

QUESTIONS = {
    "en": {
        "subject": "How did we do?",
        "csat": "How satisfied are you with how we handled your request? "
        "(1 = very unsatisfied, 5 = very satisfied)",
        "ces": "How easy was it to get your request handled? (1 = very difficult, 7 = very easy)",
        "nps": "How likely are you to recommend us to a friend or colleague? "
        "(0 = not at all likely, 10 = extremely likely)",
        "intro": "Thank you for contacting us. One click tells us how we did:",
        "answer": "Answer here",
    },
    "zh": {
        "subject": "我们做得怎么样？",
        "csat": "您对我们处理您的请求是否满意？（1 = 非常不满意，5 = 非常满意）",
        "ces": "处理您的请求有多容易？（1 = 非常困难，7 = 非常容易）",
        "nps": "您有多大可能向朋友或同事推荐我们？（0 = 完全不可能，10 = 极有可能）",
        "intro": "感谢您联系我们。点击一下，告诉我们做得如何：",
        "answer": "在此回答",
    },
}
# A text message is read on a phone and billed by the segment: one short line per survey, with its link.
SHORT_QUESTIONS = {
    "en": {
        "intro": "Thank you for contacting us.",
        "csat": "How did we do? Rate us 1-5",
        "ces": "How easy was it to get help? Rate it 1-7",
        "nps": "Would you recommend us? Rate it 0-10",
    },
    "zh": {
        "intro": "感谢您联系我们。",
        "csat": "请为我们的服务打分（1-5）",
        "ces": "获得帮助是否容易？请打分（1-7）",
        "nps": "您会向朋友推荐我们吗？请打分（0-10）",
    },
}
# Each survey's scale, lowest to highest; threadline.analytics.surveys reads answers on the same scales.
SCALES = {"csat": (1, 5), "ces": (1, 7), "nps": (0, 10)}


def survey_email(links: dict[str, str], language: str | None) -> tuple[str, str, str]:
    """Subject, text and HTML asking each survey in `links` (kind -> its answer page's URL). The HTML
    has a link per score, which opens the page with that score chosen; the page still asks for the
    click that records it, since mail scanners follow every link."""
    words = QUESTIONS[_language(language)]
    text_parts = [words["intro"], ""]
    html_parts = [f"<p>{escape(words['intro'])}</p>"]
    for kind, url in links.items():
        low, high = SCALES[kind]
        text_parts += [words[kind], f"{words['answer']}: {url}", ""]
        scores = " ".join(
            f'<a href="{escape(url)}?score={n}" style="padding:4px 8px">{n}</a>' for n in range(low, high + 1)
        )
        html_parts.append(f"<p>{escape(words[kind])}</p><p>{scores}</p>")
    return words["subject"], "\n".join(text_parts).strip() + "\n", "\n".join(html_parts)


def _language(language: str | None) -> str:
    return "zh" if (language or "").lower().startswith("zh") else "en"


def survey_text(links: dict[str, str], language: str | None) -> tuple[str, str]:
    """Subject (kept for the delivery log only) and the short text asking each survey in `links`: a
    line per survey with its answer page's link, where the customer picks the score."""
    words = SHORT_QUESTIONS[_language(language)]
    lines = [words["intro"], *(f"{words[kind]}: {url}" for kind, url in links.items())]
    return QUESTIONS[_language(language)]["subject"], "\n".join(lines)
