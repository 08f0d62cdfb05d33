"""Find each use of a Celery feature of the table (``features.py``) in one module.

Works on the module before and after the codemod alike (``celery_gcp.`` names are read as the
``celery.`` ones they replace), so a migrated project checked again reports the same uses. A
line holding ``celery-gcp: ok`` (a comment) is not reported: the use has been reviewed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import PositionProvider, QualifiedNameProvider, QualifiedNameSource

from .._setting_names import OLD_TO_NEW
from .features import FEATURES, OLD_NAME, Feature
from .rewrite import dotted

__all__ = ["REVIEWED", "Detector", "Use"]

#: The comment that marks a reported line as reviewed.
REVIEWED = "celery-gcp: ok"
#: ``Celery(broker=, backend=)``: the settings those arguments set.
_CONSTRUCTOR = {"broker": "broker_url", "backend": "result_backend"}
#: Names that hold the Celery app in most projects, besides those assigned ``Celery(...)``.
_APP_NAMES = frozenset({"app", "celery_app"})


@dataclass(frozen=True)
class Use:
    """A use of ``feature`` on ``line`` (``detail``: the name as written, for settings)."""

    line: int
    feature: Feature
    detail: str = ""


def _normal(name: str) -> str:
    """``celery_gcp.x`` as the Celery name it stands for (``celery.x``, ``kombu.x``)."""
    for new, old in (("celery_gcp.kombu", "kombu"), ("celery_gcp", "celery")):
        if name == new or name.startswith(new + "."):
            return old + name[len(new):]
    return name


def _by_kind(kind: str) -> list[Feature]:
    return [f for f in FEATURES if f.kind == kind]


class Detector(cst.CSTVisitor):
    """Collects ``uses`` of the table's features in one module."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.uses: list[Use] = []
        self._lines = lines
        self._seen: set[tuple[int, str]] = set()
        self._inner: set[int] = set()  # attribute nodes inside a chain already looked at
        self._depth = 0  # inside a function body: assignments there are not settings
        self._apps = set(_APP_NAMES)

    def _add(self, node: cst.CSTNode, feature: Feature, detail: str = "") -> None:
        line = self.get_metadata(PositionProvider, node).start.line
        key = (line, feature.title + detail)
        if key in self._seen or REVIEWED in self._lines[line - 1]:
            return
        self._seen.add(key)
        self.uses.append(Use(line, feature, detail))

    def _qnames(self, node: cst.CSTNode) -> list[str]:
        return [_normal(q.name) for q in self.get_metadata(QualifiedNameProvider, node, set())
                if q.source is QualifiedNameSource.IMPORT]

    # -- names: celery.chord, celery.signals.worker_ready, ... -----------------------------

    def _names(self, node: cst.Name | cst.Attribute) -> None:
        for qname in self._qnames(node):
            for feature in _by_kind("name"):
                for m in feature.match:
                    if qname == m or qname.startswith(m + "."):
                        self._add(node, feature, m)

    def visit_Name(self, node: cst.Name) -> None:
        self._names(node)

    # -- attributes: app.control.revoke, self.replace, .revoke() -------------------------

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._names(node)
        if id(node) in self._inner:
            return
        attrs: list[str] = []
        base: cst.BaseExpression = node
        while isinstance(base, cst.Attribute):
            self._inner.add(id(base))
            attrs.insert(0, base.attr.value)
            base = base.value
        on = self._on(base)
        if on == "self" and attrs[:1] == ["app"]:  # self.app.control: the app
            on, attrs = "app", attrs[1:]
        best: tuple[Feature, str] | None = None
        size = 0
        for feature in _by_kind("attribute"):
            for match in feature.match:
                parts = match.split(".")
                if feature.on == "any":
                    hit = any(attrs[i:i + len(parts)] == parts for i in range(len(attrs)))
                else:
                    hit = feature.on == on and attrs[:len(parts)] == parts
                if hit and len(parts) > size:  # the most specific entry: control.revoke
                    shown = f".{match}" if feature.on == "any" else f"{feature.on}.{match}"
                    best, size = (feature, shown), len(parts)
        if best is not None:
            self._add(node, *best)

    def _on(self, base: cst.BaseExpression) -> str:
        if isinstance(base, cst.Name):
            if base.value == "self":
                return "self"
            if base.value in self._apps or "celery.current_app" in self._qnames(base):
                return "app"
        return "any"

    # -- keywords and settings -----------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        callee = func.value if isinstance(func, cst.Name) else (
            func.attr.value if isinstance(func, cst.Attribute) else None)
        conf_update = callee == "update" and isinstance(func, cst.Attribute) and (
            (dotted(func.value) or "").split(".")[-1] == "conf")
        for arg in node.args:
            if arg.keyword is None:
                if conf_update and isinstance(arg.value, cst.Dict):
                    self._dict_settings(arg.value)
                continue
            word = arg.keyword.value
            if conf_update:
                self._setting(arg, word)
            elif callee == "Celery" and word in _CONSTRUCTOR:
                self._setting(arg, _CONSTRUCTOR[word], shown=word)
            for feature in _by_kind("keyword"):
                if word in feature.match and callee in feature.calls:
                    self._add(arg, feature, f"{word}=")

    def _dict_settings(self, node: cst.Dict) -> None:
        for element in node.elements:
            if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
                key = element.key.raw_value
                if key.isidentifier():
                    self._setting(element, key)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assigned(node, [t.target for t in node.targets], node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._assigned(node, [node.target], node.value)

    def _assigned(self, node: cst.CSTNode, targets: Iterable[cst.BaseExpression],
                  value: cst.BaseExpression | None) -> None:
        for target in targets:
            if isinstance(target, cst.Name):
                if isinstance(value, cst.Call) and "celery.Celery" in self._qnames(value.func):
                    self._apps.add(target.value)
                if self._depth == 0:  # a settings module or a config class
                    self._setting(node, target.value)
            elif isinstance(target, cst.Attribute) and (
                    dotted(target.value) or "").split(".")[-1] == "conf":
                self._setting(node, target.attr.value)  # app.conf.task_soft_time_limit = ...
            elif isinstance(target, cst.Subscript) and (
                    dotted(target.value) or "").split(".")[-1] == "conf":
                index = target.slice[0].slice if target.slice else None
                if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
                    self._setting(node, index.value.raw_value)

    def _setting(self, node: cst.CSTNode, name: str, shown: str = "") -> None:
        shown = shown or name
        namespaced = name.startswith("CELERY_") and name[len("CELERY_"):].lower()
        if name in OLD_TO_NEW and OLD_TO_NEW[name] != namespaced:
            self._add(node, OLD_NAME, f"{name} -> {OLD_TO_NEW[name]}")
            name = OLD_TO_NEW[name]
        elif name.isupper() and name.startswith("CELERY_"):  # namespace="CELERY" (Django)
            name = name[len("CELERY_"):].lower()
        elif not name.islower():
            return
        for feature in _by_kind("setting"):
            if name in feature.match:
                self._add(node, feature, shown)
