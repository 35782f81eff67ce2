"""Wikitext -> clean paragraphs with link spans, using mwparserfromhell's parse tree.

Kept: prose, list items, bold/italic and inline HTML contents, the display text of every link, the
text of a few inline templates (`nowrap`, `lang`, `convert`, ...). Dropped: other templates
(infoboxes, citations, navboxes), references, tables, files/images with their captions, categories,
interlanguage links, comments, math, galleries, headings, and every section from "References" /
"External links" / "See also" on. Internal links to articles become `Link`s (char span into the
paragraph text + normalised target title); a link nested in another link's text or in an image
caption is not a mention of its own.

    >>> article = parse_article("'''Paris''' is the capital of [[France]].<ref>x</ref>", LinkClassifier({}))
    >>> article.paragraphs[0]
    Paragraph(text='Paris is the capital of France.', links=(Link(start=24, end=30, target='France'),), prose=True)
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import unquote

import mwparserfromhell
from mwparserfromhell.nodes import (
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

from elcore.wikipedia.dump import DEFAULT_NAMESPACES

# Private-use characters mark link starts/ends and list items in the flattened text, so that
# whitespace clean-up can run on the text while the link spans stay exact.
_OPEN, _CLOSE, _ITEM = "\ue000", "\ue001", "\ue002"
_MARKERS = str.maketrans("", "", _OPEN + _CLOSE + _ITEM)
_SPLIT_MARKERS = re.compile(f"([{_OPEN}{_CLOSE}])")
_WS = re.compile(r"\s+")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_EMPTY_PARENS = re.compile(r"\(\s*(?:[,;:]\s*)*\)")
_OPEN_PAREN_PUNCT = re.compile(r"\(\s*[,;:]\s*")
_CLOSE_PAREN_PUNCT = re.compile(r"\s*[,;]\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?])")
_LINK_TRAIL = re.compile(r"[a-z]+")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_REDIRECT = re.compile(r"#REDIRECT\s*:?\s*\[\[([^\]|]+)", re.I)
_BAD_TITLE_CHARS = re.compile(r"[<>\[\]{}|]")

#: Sections from which on nothing is article prose (level-2 headings, lower-cased).
STOP_SECTIONS = frozenset(
    "references|external links|see also|notes|further reading|bibliography|sources|citations|"
    "footnotes|notes and references|references and notes|works cited|external sources|"
    "explanatory notes|general references|cited sources".split("|")
)
#: Templates that mark a disambiguation page (lower-cased); so does any name ending " disambiguation".
DISAMBIGUATION_TEMPLATES = frozenset(
    "disambiguation|disambig|disamb|dab|dis|disambiguation page|hndis|geodis|numberdis|mathdab|"
    "letter-numbercombdisambig|schooldis|shipindex|sisterdis|airport disambiguation".split("|")
)
_DROP_TAGS = frozenset(
    "ref|references|gallery|math|chem|ce|timeline|imagemap|score|syntaxhighlight|source|pre|"
    "templatedata|graph|mapframe|maplink|categorytree|inputbox|hiero|includeonly|style|script|"
    "section|templatestyles|indicator|table|tr|td|th|caption|noinclude".split("|")
)
_BLOCK_TAGS = frozenset("p|div|blockquote|center|ul|ol|dl|li|dd|dt|hr|h1|h2|h3|h4|h5|h6".split("|"))
# Inline templates whose output is (part of) the sentence: name -> positional params shown.
_SHOW_PARAMS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys("nowrap|nobr|nobreak|small|smaller|big|larger|em|strong|nobold|noitalic|sc|smallcaps|"
                    "small caps|nihongo|abbr|keypress|mvar|var|angle bracket|bracket".split("|"), ("1",)),
    "lang": ("2",),
    "transl": ("2",),
    "convert": ("1", "2"),
    "cvt": ("1", "2"),
}  # fmt: skip
_FIXED_TEXT = {"ndash": "–", "mdash": "—", "snd": " – ", "spaced ndash": " – ", "nbsp": " ", "-": " "}
_CASE_FUNCTIONS = {
    "formatnum": str,
    "lc": str.lower,
    "uc": str.upper,
    "lcfirst": lambda s: s[:1].lower() + s[1:],
    "ucfirst": lambda s: s[:1].upper() + s[1:],
}
_NAMESPACE_ALIASES = {"image": 6, "image talk": 7, "wp": 4, "wt": 5, "project": 4, "project talk": 5}
#: Interwiki prefixes (sister projects, and language editions for interlanguage links).
INTERWIKI_PREFIXES = frozenset(
    "wikt|wiktionary|w|wikipedia|s|wikisource|q|wikiquote|b|wikibooks|n|wikinews|v|wikiversity|voy|"
    "wikivoyage|species|wikispecies|commons|c|d|wikidata|m|meta|metawikipedia|mw|mediawikiwiki|"
    "foundation|wmf|phab|phabricator|gerrit|iarchive|google|doi|arxiv|imdbname|imdbtitle".split("|")
)
LANGUAGE_PREFIXES = frozenset(
    "aa|ab|ace|af|ak|als|am|an|ang|ar|arc|arz|as|ast|av|ay|az|azb|ba|bar|bat-smg|bcl|be|be-tarask|"
    "be-x-old|bg|bh|bi|bjn|bm|bn|bo|bpy|br|bs|bug|bxr|ca|cbk-zam|cdo|ce|ceb|ch|cho|chr|chy|ckb|co|cr|"
    "crh|cs|csb|cu|cv|cy|da|de|diq|dsb|dv|dz|ee|el|eml|en|eo|es|et|eu|ext|fa|ff|fi|fiu-vro|fj|fo|fr|"
    "frp|frr|fur|fy|ga|gag|gan|gd|gl|glk|gn|gom|got|gu|gv|ha|hak|haw|he|hi|hif|ho|hr|hsb|ht|hu|hy|hz|"
    "ia|id|ie|ig|ii|ik|ilo|io|is|it|iu|ja|jbo|jv|ka|kaa|kab|kbd|kg|ki|kj|kk|kl|km|kn|ko|koi|kr|krc|ks|"
    "ksh|ku|kv|kw|ky|la|lad|lb|lbe|lez|lg|li|lij|lmo|ln|lo|lrc|lt|ltg|lv|mai|map-bms|mdf|mg|mh|mhr|mi|"
    "min|mk|ml|mn|mr|mrj|ms|mt|mus|mwl|my|myv|mzn|na|nah|nap|nds|nds-nl|ne|new|ng|nl|nn|no|nov|nrm|"
    "nso|nv|ny|oc|olo|om|or|os|pa|pag|pam|pap|pcd|pdc|pfl|pi|pih|pl|pms|pnb|pnt|ps|pt|qu|rm|rmy|rn|ro|"
    "roa-rup|roa-tara|ru|rue|rw|sa|sah|sc|scn|sco|sd|se|sg|sh|si|simple|sk|sl|sm|sn|so|sq|sr|srn|ss|"
    "st|stq|su|sv|sw|szl|ta|tcy|te|tet|tg|th|ti|tk|tl|tn|to|tpi|tr|ts|tt|tum|tw|ty|tyv|udm|ug|uk|ur|"
    "uz|ve|vec|vep|vi|vls|vo|wa|war|wo|wuu|xal|xh|xmf|yi|yo|za|zea|zh|zh-classical|zh-min-nan|"
    "zh-yue|zu".split("|")
)


@dataclass(frozen=True)
class Link:
    """An internal link: `text[start:end]` is its anchor text, `target` the normalised title."""

    start: int
    end: int
    target: str


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of clean text; `prose` is False for list items and indented lines."""

    text: str
    links: tuple[Link, ...]
    prose: bool = True


@dataclass(frozen=True)
class Article:
    paragraphs: list[Paragraph]
    is_disambiguation: bool

    def lead(self) -> Paragraph | None:
        """The first prose paragraph (the article's opening paragraph), if any."""
        return next((p for p in self.paragraphs if p.prose), None)


def normalize_title(raw: str) -> str:
    """MediaWiki's canonical form of a title: entities decoded, `_` -> space, whitespace collapsed,
    fragment dropped, first letter upper-cased (enwiki's `first-letter` case rule).

        >>> normalize_title("  united_States#History")
        'United States'
    """
    t = html.unescape(raw) if "&" in raw else raw
    t = " ".join(t.replace("_", " ").split("#", 1)[0].split())
    first = t[:1].upper()
    return first + t[1:] if len(first) == 1 else t


class LinkClassifier:
    """Tell article links from files, categories, other namespaces and interwiki links.

    Args:
        namespaces: namespace key -> name, from the dump's siteinfo (defaults: enwiki's).
    """

    def __init__(self, namespaces: dict[int, str] | None = None) -> None:
        names = namespaces or DEFAULT_NAMESPACES
        self.namespaces = {name.lower(): key for key, name in names.items() if name}
        for alias, key in _NAMESPACE_ALIASES.items():
            self.namespaces.setdefault(alias, key)

    def classify(self, raw: str) -> tuple[str, str]:
        """`(kind, title)`: kind is `article` (title set), `file`, `category`, `other`, `interlanguage`
        or `none` (a same-page fragment or an invalid title)."""
        t = html.unescape(raw) if "&" in raw else raw
        t = " ".join(_COMMENT.sub("", t).replace("_", " ").split())
        colon = t.startswith(":")
        t = t[1:].strip() if colon else t
        if "%" in t:
            t = unquote(t)
        if not t or t.startswith("#") or _BAD_TITLE_CHARS.search(t):
            return "none", ""
        if ":" in t:
            prefix = " ".join(t.split(":", 1)[0].lower().split())
            key = self.namespaces.get(prefix)
            if key is not None:
                if key in (6, -2) and not colon:
                    return "file", ""
                if key == 14 and not colon:
                    return "category", ""
                if key != 0:
                    return "other", ""
            elif prefix in LANGUAGE_PREFIXES:
                return ("other" if colon else "interlanguage"), ""
            elif prefix in INTERWIKI_PREFIXES:
                return "other", ""
        title = normalize_title(t)
        return ("article", title) if title else ("none", "")


def redirect_target(text: str) -> str | None:
    """The target of a `#REDIRECT [[...]]` page text (for dumps without `<redirect>` elements)."""
    match = _REDIRECT.match(text.lstrip())
    return normalize_title(match.group(1)) if match else None


def _template_name(node: Template) -> str:
    name = " ".join(_COMMENT.sub("", str(node.name)).replace("_", " ").split()).lower()
    return name[len("template:") :].strip() if name.startswith("template:") else name


class _Flattener:
    """Walk the parse tree and write text with link markers; collect link targets in order."""

    def __init__(self, classifier: LinkClassifier) -> None:
        self.classifier = classifier
        self.parts: list[str] = []
        self.targets: list[str] = []
        self.is_disambiguation = False

    def article(self, code: Wikicode) -> None:
        for node in code.nodes:
            if isinstance(node, Heading):
                if node.level <= 2 and node.title.strip_code().strip().lower() in STOP_SECTIONS:
                    return
                self.parts.append("\n\n")
            else:
                self.node(node, False)

    def code(self, code: Wikicode, in_link: bool) -> None:
        for node in code.nodes:
            self.node(node, in_link)

    def node(self, node: object, in_link: bool) -> None:
        if isinstance(node, Text):
            self.text(node.value)
        elif isinstance(node, Wikilink):
            self.wikilink(node, in_link)
        elif isinstance(node, Template):
            self.template(node, in_link)
        elif isinstance(node, Tag):
            self.tag(node, in_link)
        elif isinstance(node, HTMLEntity):
            self.text(node.normalize())
        elif isinstance(node, ExternalLink):
            if node.brackets and node.title is not None:
                self.code(node.title, in_link)
        elif isinstance(node, Heading):
            self.parts.append("\n\n")
        # Comment, Argument: nothing.

    def text(self, value: str) -> None:
        value = value.translate(_MARKERS)
        if "__" in value:
            value = _MAGIC_WORD.sub("", value)
        if self.parts and self.parts[-1] == _CLOSE and value:
            trail = _LINK_TRAIL.match(value)  # "[[apple]]s": the link covers "apples", as rendered
            if trail:
                self.parts.insert(len(self.parts) - 1, trail.group())
                value = value[trail.end() :]
        self.parts.append(value)

    def wikilink(self, node: Wikilink, in_link: bool) -> None:
        raw = str(node.title)
        kind, target = self.classifier.classify(raw)
        if kind in ("file", "category", "interlanguage"):
            return
        if node.text is None or not str(node.text).strip():
            shown = raw.strip().lstrip(":")
            if node.text is not None:  # the pipe trick: [[Paris, Texas|]] shows "Paris"
                shown = re.sub(r"\s*\([^)]*\)\s*$", "", shown.split(":", 1)[-1]).split(",", 1)[0]
            display: Wikicode | None = None
        else:
            display = node.text
        if kind == "article" and not in_link:
            self.parts.append(_OPEN)
            self.targets.append(target)
        if display is None:
            self.text(html.unescape(_COMMENT.sub("", shown)))
        else:
            self.code(display, True)
        if kind == "article" and not in_link:
            self.parts.append(_CLOSE)

    def template(self, node: Template, in_link: bool) -> None:
        name = _template_name(node)
        if name in DISAMBIGUATION_TEMPLATES or name.endswith(" disambiguation"):
            self.is_disambiguation = True
            return
        if name in _FIXED_TEXT:
            self.text(_FIXED_TEXT[name])
            return
        function, colon, argument = str(node.name).partition(":")
        if colon and function.strip().lower() in _CASE_FUNCTIONS:  # {{formatnum:808}}, {{lc:X}}
            self.text(_CASE_FUNCTIONS[function.strip().lower()](_COMMENT.sub("", argument).strip()))
            return
        if name == "ill" and node.has("1"):  # interlanguage-link template: a link to the enwiki title
            kind, target = self.classifier.classify(node.get("1").value.strip_code())
            shown = node.get("lt").value if node.has("lt") else node.get("1").value
            if kind == "article" and not in_link:
                self.parts.append(_OPEN)
                self.targets.append(target)
                self.code(shown, True)
                self.parts.append(_CLOSE)
            else:
                self.code(shown, True)
            return
        shown_params = _SHOW_PARAMS.get(name, ("1",) if name.startswith("lang-") else ())
        for i, key in enumerate(shown_params):
            if node.has(key):
                if i:
                    self.text(" ")
                self.code(node.get(key).value, in_link)

    def tag(self, node: Tag, in_link: bool) -> None:
        markup = node.wiki_markup
        if markup in ("''", "'''", "'''''"):
            if node.contents is not None:
                self.code(node.contents, in_link)
            return
        if markup == "{|" or markup == "----":  # a table, a rule: dropped, ends the paragraph
            self.parts.append("\n\n")
            return
        if markup in ("*", "#", ":", ";"):
            self.parts.append(_ITEM)
            return
        name = str(node.tag).strip().lower()
        if name in _DROP_TAGS:
            if name in ("table", "pre", "gallery", "math", "timeline"):
                self.parts.append("\n\n" if name != "math" else "")
            return
        if name == "br":
            self.parts.append(" ")
            return
        block = name in _BLOCK_TAGS
        if block:
            self.parts.append("\n\n")
        if node.contents is not None:
            self.code(node.contents, in_link)
        if block:
            self.parts.append("\n\n")


def _clean(block: str) -> str:
    s = _WS.sub(" ", block.replace(_ITEM, " "))
    s = s.replace(_OPEN + " ", " " + _OPEN).replace(" " + _CLOSE, _CLOSE + " ")
    s = _EMPTY_PARENS.sub("", s)
    s = _OPEN_PAREN_PUNCT.sub("(", s)
    s = _CLOSE_PAREN_PUNCT.sub(")", s)
    s = _SPACE_BEFORE_PUNCT.sub(r"\1", _WS.sub(" ", s))
    return s.strip()


def _extract(block: str, targets: list[str], counter: list[int]) -> tuple[str, list[Link]]:
    """Drop the markers of a cleaned block, turning each marked span into a `Link`."""
    out: list[str] = []
    links: list[Link] = []
    length, start, target = 0, -1, ""
    for piece in _SPLIT_MARKERS.split(block):
        if piece == _OPEN:
            start, target = length, targets[counter[0]]
            counter[0] += 1
        elif piece == _CLOSE:
            if start >= 0 and length > start:
                links.append(Link(start, length, target))
            start = -1
        elif piece:
            out.append(piece)
            length += len(piece)
    return "".join(out), links


def _paragraphs(flat: str, targets: list[str]) -> list[Paragraph]:
    blocks: list[tuple[str, bool]] = []
    current: list[str] = []
    for line in flat.split("\n"):
        stripped = line.strip()
        if stripped.startswith(_ITEM) or not stripped:
            if current:
                blocks.append((" ".join(current), True))
                current = []
            if stripped:
                blocks.append((stripped, False))
        else:
            current.append(stripped)
    if current:
        blocks.append((" ".join(current), True))
    counter = [0]
    paragraphs = []
    for block, prose in blocks:
        text, links = _extract(_clean(block), targets, counter)
        if any(c.isalnum() for c in text):
            paragraphs.append(Paragraph(text, tuple(links), prose))
    return paragraphs


def parse_article(wikitext: str, classifier: LinkClassifier) -> Article:
    """Parse an article's wikitext into clean paragraphs with their links.

    Raises:
        Exception: whatever mwparserfromhell raises on input it cannot parse (callers report the
            page and go on).
    """
    flattener = _Flattener(classifier)
    flattener.article(mwparserfromhell.parse(wikitext))
    if "__DISAMBIG__" in wikitext:
        flattener.is_disambiguation = True
    return Article(_paragraphs("".join(flattener.parts), flattener.targets), flattener.is_disambiguation)


def cut_description(text: str, max_chars: int) -> str:
    """Cut at the last sentence end (`.`, `!`, `?` then a space) at or before `max_chars`, else at the
    last space, else hard.

        >>> cut_description("One. Two three. Four", 16)
        'One. Two three.'
    """
    if len(text) <= max_chars:
        return text
    window = text[: max_chars + 1]
    ends = [m.end() for m in re.finditer(r"[.!?](?= )", window) if m.end() <= max_chars]
    if ends:
        return text[: ends[-1]]
    space = window.rfind(" ")
    return text[:space].rstrip() if space > 0 else text[:max_chars]
