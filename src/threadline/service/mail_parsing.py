"""Reading an inbound email (standard library `email`, policy `default`): sender, subject, text and
HTML bodies, attachments, and the Message-ID / In-Reply-To / References that thread it.

Chinese mail is often labelled GB2312 while it holds GBK characters (镕, 堃, many names): a strict
GB2312 decoder turns those into replacement characters. Text labelled GB2312 or GBK is decoded as
GB18030, the superset both are part of; RFC 2047 encoded words (subjects, names, filenames) likewise.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.errors import MessageDefect, NoBoundaryInMultipartDefect, StartBoundaryNotFoundDefect
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import getaddresses

from threadline.service.conversations import InboundAttachment

# Charsets decoded with a superset: what senders label them is narrower than what they write.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "gb_2312-80": "gb18030",
    "big5": "big5hkscs",
    "ascii": "utf-8",
    "us-ascii": "utf-8",
}
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_BROKEN_STRUCTURE = (NoBoundaryInMultipartDefect, StartBoundaryNotFoundDefect)
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)


class MalformedEmail(Exception):
    """An email that cannot become a conversation; kept in the quarantine with `reason`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    sender: str  # the address, as written
    sender_name: str | None
    subject: str | None
    body_text: str
    body_html: str | None
    attachments: tuple[InboundAttachment, ...]
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes of a part in its declared charset (or a superset of it), falling back to UTF-8, then
    GB18030, then replacing what still does not decode: a message is never refused for its bytes."""
    declared = (charset or "utf-8").strip().strip('"').lower()
    for name in (_SUPERSETS.get(declared, declared), "utf-8", "gb18030"):
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")


def decode_words(raw: str | None) -> str | None:
    """A header's raw text with its RFC 2047 encoded words decoded (by the supersets above)."""
    if raw is None:
        return None
    if any("\udc80" <= ch <= "\udcff" for ch in raw):  # 8-bit header bytes, as the parser kept them
        raw = decode_bytes(raw.encode("ascii", "surrogateescape"), "utf-8")
    parts = []
    for chunk, charset in decode_header(raw):
        parts.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return " ".join("".join(parts).split()) or None


def _raw_header(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _ids(value: str | None) -> tuple[str, ...]:
    return tuple(_MESSAGE_ID.findall(value or ""))


def _sender(message: EmailMessage, envelope_sender: str | None) -> tuple[str, str | None]:
    raw = _raw_header(message, "From")
    if raw:
        for name, address in getaddresses([raw]):
            if "@" in address:
                return address.strip(), decode_words(name) if name else None
    if envelope_sender and "@" in envelope_sender:
        return envelope_sender.strip("<> "), None
    raise MalformedEmail("from", "no sender address (neither a From header nor an envelope sender)")


def _filename(part: Message) -> str | None:
    # RFC 2231 parameters come decoded from the policy; RFC 2047 words inside quotes (common from
    # Chinese mail clients, not standard) are decoded here, with the charset supersets.
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = part.get_param(param, header=header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, text)
            charset, _, text = value
            return decode_bytes(text.encode("latin-1", "replace"), charset or "utf-8")
        if isinstance(value, str) and value:
            return decode_words(value.strip('"'))
    return None


def _lines(text: str) -> str:
    """Text with the line ends it is stored and shown with (SMTP's CRLF becomes LF)."""
    return text.replace("\r\n", "\n")


def _html_to_text(body: str) -> str:
    text = re.sub(r"<br\s*/?>|</p>|</div>", "\n", body, flags=re.IGNORECASE)
    return html.unescape(_TAGS.sub("", text)).strip()


def parse_email(raw: bytes, *, max_attachment_bytes: int, envelope_sender: str | None = None) -> ParsedEmail:
    """The email in `raw`; MalformedEmail (field, reason) when it cannot be read as one."""
    try:
        message = BytesParser(policy=default_policy).parsebytes(raw)
    except Exception as error:  # the parser is lenient; this is a bug in it, not in the mail
        raise MalformedEmail("message", f"could not be parsed ({type(error).__name__})") from None
    assert isinstance(message, EmailMessage)
    defects: list[MessageDefect] = [d for part in message.walk() for d in part.defects]
    if any(isinstance(d, _BROKEN_STRUCTURE) for d in defects):
        raise MalformedEmail("message", "a multipart message whose parts cannot be found (no boundary)")
    sender, sender_name = _sender(message, envelope_sender)
    body_text: str | None = None
    body_html: str | None = None
    attachments: list[InboundAttachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = _filename(part)
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        is_body = content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename
        if is_body and content_type == "text/plain" and body_text is None:
            body_text = _lines(decode_bytes(data, part.get_content_charset()))
        elif is_body and content_type == "text/html" and body_html is None:
            body_html = _lines(decode_bytes(data, part.get_content_charset()))
        elif not is_body:
            kept = data if len(data) <= max_attachment_bytes else b""
            name = filename or f"attachment.{part.get_content_subtype()}"
            attachments.append(InboundAttachment(name, content_type, len(data), kept))
    if body_text is None:
        body_text = _html_to_text(body_html) if body_html else ""
    return ParsedEmail(
        sender=sender,
        sender_name=sender_name,
        subject=decode_words(_raw_header(message, "Subject")),
        body_text=body_text,
        body_html=body_html,
        attachments=tuple(attachments),
        message_id=next(iter(_ids(_raw_header(message, "Message-ID"))), None),
        in_reply_to=next(iter(_ids(_raw_header(message, "In-Reply-To"))), None),
        references=_ids(_raw_header(message, "References")),
    )
