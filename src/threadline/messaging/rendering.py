"""Message templates: a subject and bodies written with the customer's traits (`{{ traits.first_name }}`).

Templates are Jinja2 in a sandbox: whoever writes one (staff today, journeys later) gets the customer's
traits and nothing of the server (no attributes of Python objects, no imports, ranges capped). A trait
the customer does not have is an error naming the field and the trait, not an empty gap in a sent
email ("Dear ,"); `{{ traits.first_name | default("there") }}` says what to write instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from threadline.errors import Invalid


class InvalidTemplate(Invalid):
    """A subject or body that does not render for this customer, naming the field (`body_text`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", details={"field": field})
        self.field = field
        self.reason = reason


class _Traits(dict[str, Any]):
    """The customer's traits as templates see them; its type tells a missing trait from other names."""

    _namespace = "traits"


class _Missing(StrictUndefined):
    @property
    def _undefined_message(self) -> str:
        name, owner = self._undefined_name, self._undefined_obj
        if self._undefined_hint is None and isinstance(owner, _Traits):
            ns = owner._namespace
            return (
                f"the customer has no trait {name!r} (used as {ns}.{name}); "
                f'write {{{{ {ns}.{name} | default("...") }}}} to send without it'
            )
        if self._undefined_hint is None and owner is missing and name is not None:
            return f"{name!r} is not defined; the customer's traits are under traits (traits.{name})"
        return str(super()._undefined_message)


_PLAIN = SandboxedEnvironment(undefined=_Missing, autoescape=False, keep_trailing_newline=True)
# HTML bodies escape every trait: a name typed into a web form must not become markup in an email.
_HTML = SandboxedEnvironment(undefined=_Missing, autoescape=True, keep_trailing_newline=True)


def render(
    field: str,
    source: str,
    traits: Mapping[str, Any],
    *,
    html: bool = False,
    namespace: str = "traits",
    variables: Mapping[str, Any] | None = None,
) -> str:
    """`source` rendered with `traits`; InvalidTemplate naming `field` when it cannot be. `namespace`
    is the name templates use for the traits: canned service replies write `{{ customer.first_name }}`.
    `variables` are further names a caller offers (a journey's trigger event: `{{ event.cart_items }}`)."""
    environment = _HTML if html else _PLAIN
    values = _Traits(traits)
    values._namespace = namespace
    try:
        template = environment.from_string(source)
        return template.render({**(variables or {}), namespace: values})
    except TemplateSyntaxError as error:
        raise InvalidTemplate(field, f"line {error.lineno}: {error.message}") from None
    except UndefinedError as error:
        raise InvalidTemplate(field, str(error.message)) from None
    except SecurityError as error:
        raise InvalidTemplate(field, f"not allowed in a template: {error}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError) as error:
        raise InvalidTemplate(field, f"{type(error).__name__}: {error}") from None
