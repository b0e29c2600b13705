"""What the customer just wrote: an email body without its quoted history and signature.

The timeline shows this part; the full text stays stored beside it, so erring on the side of
showing too much is safe and showing nothing is not: when the rules would leave nothing (a mail
that is only a forwarded message, a reply that only quotes), the full text is returned.

``mail-parser-reply`` knows reply headers in many languages ("On … wrote:", "Dnia … napisał(a):",
Outlook "From: … Sent:" blocks); we use it to find them. Its signature rules cut from "Thanks,"
or "Best," or any line starting with "- " to the end of the mail, which in customer mail often
drops the actual request ("Thanks, but now the app crashes…") and bullet lists, it takes any two
"From:/To:" lines for a header (a travel request's "From: Berlin / To: Munich" too), and it strips
indentation. So the line-based rules below decide, and the library adds cut points:

1. a **history block** cuts everything after it: Outlook headers (From, then Subject or Sent, in
   English, German, Spanish, French, Dutch, Italian, Polish and Russian), "-----Original
   Message-----" and forward markers, and an "On … wrote:" line (en, de, es, fr, nl, it, pt, or
   one the library knows) that is followed by unquoted text (converted HTML has no ">");
2. **quoted lines** (">") are dropped wherever they are, with the "On … wrote:" line that
   introduces them; inline answers between quotes stay;
3. a **signature** is cut: the "-- " delimiter, a short block after a separator line,
   "Sent from my iPhone"-type lines, and (when the sender's name is known) a closing block that
   starts with the sender's name.

HTML-only mail is cut at its first quote container (Gmail, Apple Mail, Thunderbird, Outlook,
Yahoo) before it is turned into text, and the same rules then apply.
"""

from __future__ import annotations

import re
import textwrap
from functools import lru_cache
from html.parser import HTMLParser

from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from mailparser_reply import EmailMessage

REPLY_LANGUAGES = ("en", "de", "es", "fr", "nl", "it", "pt", "pl", "tr")
# Headers are found near the top; scanning a 700 kB quoted thread for more of them only costs time.
_LIBRARY_SCAN_CHARS = 60_000
_MAX_HEADER_LINES = 3
_MAX_SIGNATURE_LINES = 12

_INVISIBLE = " \t\xa0\u200b\u200c\u200d\u2060\ufeff"
_QUOTED = re.compile(r"^\s*>")
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_SEPARATOR = re.compile(r"^\s*(?:[-_=*]\s*){2,}$")
_HISTORY_MARKER = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht|mensaje original"
    r"|message d'origine|message original|oorspronkelijk bericht|origineel bericht|messaggio originale"
    r"|mensagem original|forwarded message|weitergeleitete nachricht|mensaje reenviado"
    r"|message transféré|doorgestuurd bericht|messaggio inoltrato|mensagem encaminhada)\s*[-_=*]{2,}\s*$"
    r"|^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht|inicio del mensaje reenviado"
    r"|début du message (?:réexpédié|transféré)|begin doorgestuurd bericht)\s*:\s*$",
    re.IGNORECASE,
)
# "From:" and friends at the start of an Outlook header block, as written by Outlook in each
# language (French puts a space, often a no-break one, before the colon), optionally in *bold*.
_HEADER_LABEL = r"^[\s*]*(?:{labels})[\s*\xa0]*:"
_FROM_LABELS = "from|von|de|van|da|od|från|fra|от"
_OTHER_LABELS = "date|to|cc|datum|an|fecha|para|à|a|aan|data|do|кому|дата|копия"
_SUBJECT_LABELS = "subject|betreff|asunto|objet|onderwerp|oggetto|assunto|temat|тема"
_SENT_LABELS = "sent|gesendet|enviado(?: el)?|envoyé(?: le)?|verzonden|inviato|enviada|wysłano|отправлено"
_FROM_LINE = re.compile(_HEADER_LABEL.format(labels=_FROM_LABELS), re.IGNORECASE)
_SUBJECT_LINE = re.compile(_HEADER_LABEL.format(labels=_SUBJECT_LABELS), re.IGNORECASE)
_SENT_LINE = re.compile(_HEADER_LABEL.format(labels=_SENT_LABELS), re.IGNORECASE)
_OTHER_LINE = re.compile(_HEADER_LABEL.format(labels=_OTHER_LABELS), re.IGNORECASE)
_WROTE = re.compile(
    r"^[-\s]*(?:on\b.{4,300}\bwrote"
    r"|am\b.{4,300}\bschrieb\b.{0,200}|.{1,200}\bschrieb am\b.{0,200}"
    r"|el\b.{4,300}\bescribió"
    r"|le\b.{4,300}\ba écrit"
    r"|op\b.{4,300}\bschreef\b.{0,200}"
    r"|il\b.{4,300}\bha scritto"
    r"|(?:em|no dia)\b.{4,300}\bescreveu"
    r")\s*:$",
    re.IGNORECASE,
)
# A line like "02.04.2012 14:20 пользователь "Bob" <bob@example.com> написал:" right above a quote.
# Over several lines it must carry both an address and a date, so that a sentence ending in a
# colon ("I got this answer on 12.03:") is not taken for one.
_GENERIC_QUOTE_HEADER = re.compile(r"^.{0,200}(?:@|\d{1,4}[./:-]\d{1,2}).{0,200}:$")
_GENERIC_WRAPPED_QUOTE_HEADER = re.compile(r"^(?=.*@)(?=.*\d{1,4}[./:-]\d{1,2}).{0,300}:$")
_HEADER_FRAGMENT = re.compile(r"@|\d{1,4}[./:-]\d{1,2}|^[-\s]*(?:on|am|el|le|op|il|em)\b", re.IGNORECASE)
_LABEL_START = re.compile(r"^[>\s*]*[^\s:]{1,15}\s?:")
_HR = re.compile(r"<hr\b[^>]*>", re.IGNORECASE)
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:sent from my|sent from outlook|sent from mail for|sent from yahoo mail|get outlook for|"
    r"sent with|sent via|sent using|von meinem|gesendet von meinem|gesendet mit|gesendet von|"
    r"enviado desde mi|enviado desde|envoyé de mon|envoyé depuis mon|envoyé à partir de|"
    r"verzonden vanaf mijn|verstuurd vanaf mijn|verzonden met|inviato da|inviato dal mio|"
    r"enviado do meu|wysłane z)\b[^,;]{0,60}$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^\s*(?:(?:best|kind|warm|many)?\s*(?:regards|wishes)|thanks(?: a lot| again)?|thank you|cheers|best|"
    r"sincerely|yours(?: sincerely| truly)?|"
    r"(?:mit )?(?:freundlichen|besten|herzlichen|lieben|viele|beste|liebe) grü(?:ß|ss)en?|grü(?:ß|ss)e|"
    r"gruß|danke|vielen dank|lg|mfg|"
    r"(?:un )?saludos?(?: cordiales)?|atentamente|gracias|muchas gracias|cordialmente|"
    r"cordialement|bien (?:à vous|cordialement)|merci(?: beaucoup)?|salutations|"
    r"met vriendelijke groet(?:en)?|vriendelijke groet(?:en)?|groeten|groetjes|bedankt|dank u(?: wel)?|mvg"
    r")\s*[,.!]?\s*$",
    re.IGNORECASE,
)

# Elements that start the quoted history in HTML mail: Gmail, Thunderbird, Apple Mail, Yahoo,
# Outlook (desktop, web and mobile).
_QUOTE_CLASSES = frozenset(
    {"gmail_quote", "gmail_extra", "moz-cite-prefix", "yahoo_quoted", "outlookmessageheader"}
)
_QUOTE_IDS = frozenset({"divrplyfwdmsg", "olk_src_body_section", "appendonsend", "x_divrplyfwdmsg"})
_INSCRIPTIS_CONFIG = ParserConfig(display_links=False, display_images=False)


def html_to_text(html: str) -> str:
    """Readable text from HTML (tables, lists and paragraphs kept apart), or "" for none."""
    if not html.strip():
        return ""
    # lxml refuses a str that still declares its own encoding.
    html = re.sub(r"^\s*<\?xml[^>]*>", "", html)
    try:
        text = get_text(html, _INSCRIPTIS_CONFIG)
    except Exception:  # lxml rejects some broken markup; fall back to tag stripping
        import html as html_lib

        text = html_lib.unescape(re.sub(r"(?s)<[^>]*>", " ", html))
    lines = [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]
    # inscriptis indents nested blocks and keeps every empty paragraph; the shared indentation and
    # runs of blank lines mean nothing to a reader.
    return re.sub(r"\n{3,}", "\n\n", textwrap.dedent("\n".join(lines))).strip("\n")


class _QuoteFinder(HTMLParser):
    """Finds where in an HTML document the quoted history starts (line and column of the tag)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.position: tuple[int, int] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.position is not None:
            return
        values = dict(attrs)
        classes = set((values.get("class") or "").lower().split())
        element_id = (values.get("id") or "").lower()
        if tag == "blockquote" or classes & _QUOTE_CLASSES or element_id in _QUOTE_IDS:
            self.position = self.getpos()


def _cut_html(html: str) -> tuple[str, bool]:
    """The HTML before the first quote container, and whether there was one."""
    finder = _QuoteFinder()
    try:
        finder.feed(html)
        finder.close()
    except Exception:  # a parser hiccup only costs us the HTML shortcut
        return html, False
    if finder.position is None:
        return html, False
    line, column = finder.position
    lines = html.splitlines(keepends=True)
    return "".join(lines[: line - 1]) + lines[line - 1][:column], True


@lru_cache(maxsize=1)
def _library_headers() -> re.Pattern[str]:
    # Only its header patterns: ``EmailReplyParser.read`` also runs the library's signature
    # regexes, which take minutes on a mail with a long run of blank lines.
    pattern: re.Pattern[str] = EmailMessage(text="", languages=list(REPLY_LANGUAGES)).HEADER_REGEX
    return pattern


def _library_header_lines(lines: list[str]) -> set[int]:
    """Line numbers where mail-parser-reply sees the header of an earlier message."""
    # The library's patterns expect its own normalisation: every line stripped.
    text = "\n".join(line.strip() for line in lines)[:_LIBRARY_SCAN_CHARS]
    found: set[int] = set()
    for match in _library_headers().finditer(text):
        start = match.start() + len(match.group(0)) - len(match.group(0).lstrip("\n"))
        index = text.count("\n", 0, start)
        # A "From: …" block is left to our own rule, which also wants a Subject or Sent line.
        if index < len(lines) and not _LABEL_START.match(lines[index].strip()):
            found.add(index)
    return found


def _next_content(lines: list[str], start: int) -> int | None:
    for index in range(start, len(lines)):
        if lines[index].strip():
            return index
    return None


def _wrote_header_length(lines: list[str], start: int) -> int:
    """How many lines starting at ``start`` form an "On … wrote:" header (0 if none)."""
    parts: list[str] = []
    for index in range(start, min(start + _MAX_HEADER_LINES, len(lines))):
        line = lines[index].strip()
        if not line or _QUOTED.match(line):
            break
        parts.append(line)
        if _WROTE.match(" ".join(parts)):
            return len(parts)
    return 0


def _is_header_block(lines: list[str], start: int) -> bool:
    """Whether an Outlook header block starts at ``start``: From, Subject or Sent, and one more.

    Subject or Outlook's "Sent" is required so that a customer's own "From: Berlin / To: Munich /
    Date: 12 May" (a travel request) is not taken for quoted history.
    """
    labels: set[str] = set()
    for line in lines[start : start + 8]:
        if _FROM_LINE.match(line):
            labels.add("from")
        elif _SUBJECT_LINE.match(line):
            labels.add("subject")
        elif _SENT_LINE.match(line):
            labels.add("sent")
        elif _OTHER_LINE.match(line):
            labels.add(line.split(":", 1)[0].strip(" *\xa0").lower())
        elif not line.strip() and labels:
            break
        elif not labels:
            return False
    return "from" in labels and bool(labels & {"subject", "sent"}) and len(labels) >= 3


def _history_start(lines: list[str]) -> int:
    """Index of the first line of unquoted history (everything from there is an earlier mail)."""
    library_lines = _library_header_lines(lines)
    for index, line in enumerate(lines):
        if not line.strip() or _QUOTED.match(line):
            continue
        if _HISTORY_MARKER.match(line):
            return index
        if _is_header_block(lines, index):
            previous = _previous_content(lines, index)
            if previous is not None and _SEPARATOR.match(lines[previous]):
                return previous
            return index
        header = _wrote_header_length(lines, index) or (1 if index in library_lines else 0)
        if header:
            following = _next_content(lines, index + header)
            if following is None or not _QUOTED.match(lines[following]):
                return index
    return len(lines)


def _previous_content(lines: list[str], before: int) -> int | None:
    for index in range(before - 1, -1, -1):
        if lines[index].strip():
            return index
    return None


def _quote_header_length(lines: list[str], last: int) -> int:
    """How many lines ending at ``last`` introduce the quoted block below them (0 if none)."""
    best = 0
    for length in range(1, _MAX_HEADER_LINES + 1):
        first = last - length + 1
        if first < 0 or not lines[first].strip():
            break
        # A wrapped header grows upwards only through lines that look like part of one.
        if length > 1 and not _HEADER_FRAGMENT.search(lines[first]):
            break
        joined = " ".join(line.strip() for line in lines[first : last + 1])
        generic = _GENERIC_QUOTE_HEADER if length == 1 else _GENERIC_WRAPPED_QUOTE_HEADER
        if _WROTE.match(joined) or generic.match(joined):
            best = length
    return best


def _drop_quotes(lines: list[str]) -> list[str]:
    """Remove quoted lines and the header lines that introduce each quoted block."""
    keep = [not _QUOTED.match(line) for line in lines]
    for index, line in enumerate(lines):
        if not _QUOTED.match(line) or (index and _QUOTED.match(lines[index - 1])):
            continue
        # The first line of a quoted block: look for its header above, across blank lines.
        above = _previous_content(lines, index)
        if above is None or not keep[above]:
            continue
        length = _quote_header_length(lines, above)
        for i in range(above - length + 1, above + 1):
            keep[i] = False
    out: list[str] = []
    removed = False
    for line, kept in zip(lines, keep, strict=True):
        if not kept:
            removed = True
            continue
        # One blank line where a quote was, not the blank lines from both of its sides.
        if removed and not line.strip() and (not out or not out[-1].strip()):
            continue
        removed = removed and not line.strip()
        out.append(line)
    return out


def _name_line(line: str, names: list[str]) -> bool:
    """A line that is the sender's name, alone or before a title ("Anna Schmidt, ACME")."""
    cleaned = re.sub(r"^[\s\-–—]+|[\s.!]+$", "", line).casefold()
    return any(cleaned == name or re.match(re.escape(name) + r"\s*[,|/(–—-]", cleaned) for name in names)


def _signature_start(lines: list[str], sender_name: str) -> int | None:
    """Where the signature starts, if there is one (never at the first line of content)."""
    content = [index for index, line in enumerate(lines) if line.strip()]
    if not content:
        return None
    # A signature without a delimiter is a short block at the very end.
    tail = content[-(_MAX_SIGNATURE_LINES + 1) :][0]
    names = _sender_names(sender_name)
    for index in range(content[0] + 1, len(lines)):
        line = lines[index]
        if _SIGNATURE_DELIMITER.match(line) or (_MOBILE_SIGNATURE.match(line) and len(line.split()) <= 8):
            return index
        if index < tail or not line.strip() or any(len(rest) > 120 for rest in lines[index:]):
            continue
        if _SEPARATOR.match(line):
            return index
        if names and _name_line(line, names):
            previous = _previous_content(lines, index)
            closing = previous is not None and previous > content[0] and _CLOSING.match(lines[previous])
            return previous if closing and previous is not None else index
    return None


def _sender_names(sender_name: str) -> list[str]:
    name = " ".join(re.sub(r"[\"'<>()]", " ", sender_name).split()).casefold()
    if "@" in name or len(name) < 3:
        return []
    names = [name]
    if "," in name:  # "Müller, Bernd" signs as "Bernd Müller"
        last, _, first = name.partition(",")
        names.append(f"{first.strip()} {last.strip()}")
    first_name = names[-1].split()[0]
    if len(first_name) >= 3:
        names.append(first_name)
    return names


def _strip_lines(text: str, sender_name: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[: _history_start(lines)]
    lines = _drop_quotes(lines)
    signature = _signature_start(lines, sender_name)
    if signature is not None:
        lines = lines[:signature]
    return _trim(lines)


def _trim(lines: list[str]) -> str:
    """The lines without trailing spaces, and without blank lines (zero-width ones too) around them."""
    lines = [line.rstrip() for line in lines]
    content = [index for index, line in enumerate(lines) if line.strip(_INVISIBLE)]
    return "\n".join(lines[content[0] : content[-1] + 1]) if content else ""


def visible_part(text: str, html: str = "", *, sender_name: str = "") -> str:
    """The new part of a mail body: ``text``, or ``html`` when ``text`` is blank.

    ``sender_name`` (the From display name), when given, lets a closing block that starts with the
    sender's name count as a signature. Never returns "" when the body had content.
    """
    if text.strip():
        visible = _strip_lines(text, sender_name)
        full = text
    elif html.strip():
        # A rule becomes a separator line, so that the text rules see "____" above a "From:" block.
        before_quote, cut = _cut_html(_HR.sub("<div>________________________________</div>", html))
        text = html_to_text(before_quote)
        # The "On … wrote:" line sits above the quote container; a quote marker lets the text
        # rules remove it like the header of any quoted block.
        visible = _strip_lines(text + "\n>" if cut else text, sender_name)
        full = html_to_text(html)
    else:
        return ""
    if visible.strip(_INVISIBLE):
        return visible
    return _trim(full.replace("\r\n", "\n").replace("\r", "\n").split("\n")) or full.strip()
