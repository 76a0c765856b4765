"""XML-RPC calls in, responses and faults out: bytes and values, no I/O.

Parsing goes through defusedxml's expat parser with DTDs forbidden, so entity expansion
(billion laughs) and external entities never run (threat 44, TOB-PYPI-23); the caller caps
the body size before it gets here.

The XML libraries (and the character-class regex) load on the first call: few bodegas ever
see one, and every start-up would otherwise pay for them.
"""

import functools
import re
from dataclasses import dataclass
from typing import Any

# Fault codes from the XML-RPC fault interoperability spec (xmlrpc-epi); PyPI answers its
# disabled search with -32500 (application error), which pip prints as a clean message.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
APPLICATION_ERROR = -32500


@functools.cache
def _not_xml_char() -> re.Pattern[str]:
    # XML 1.0 allows only these characters; upstream strings may hold anything (a summary
    # with a NUL or a lone surrogate would make the whole response unparseable for the client).
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: tuple[Any, ...]


class CallError(Exception):
    """A request that cannot be answered; becomes a fault with this code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_call(body: bytes) -> Call:
    """A methodCall document, or CallError."""
    import xmlrpc.client
    from xml.parsers.expat import ExpatError

    from defusedxml import DefusedXmlException
    from defusedxml.xmlrpc import DefusedExpatParser

    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = DefusedExpatParser(unmarshaller, forbid_dtd=True)
    try:
        parser.feed(body)
        parser.close()
        params = unmarshaller.close()
    except DefusedXmlException as error:
        raise CallError(PARSE_ERROR, f"forbidden XML construct: {type(error).__name__}") from None
    except (ExpatError, xmlrpc.client.Error, ValueError, TypeError, IndexError, KeyError):
        raise CallError(PARSE_ERROR, "not a well-formed XML-RPC request") from None
    method = unmarshaller.getmethodname()
    if not isinstance(method, str) or not method:
        raise CallError(INVALID_REQUEST, "not an XML-RPC methodCall")
    return Call(method, tuple(params))


def render_result(value: Any) -> bytes:
    """A methodResponse carrying `value`, with every string made XML-safe."""
    import xmlrpc.client

    return xmlrpc.client.dumps((_xml_safe(value),), methodresponse=True).encode()


def render_fault(code: int, message: str) -> bytes:
    import xmlrpc.client

    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, _xml_safe(message))).encode()


def _xml_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _not_xml_char().sub("\ufffd", value)
    if isinstance(value, dict):
        return {_xml_safe(k): _xml_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_xml_safe(v) for v in value]
    return value
