"""Android ``<string-array>`` items, which translate-toolkit's reader skips: each ``<item>`` is read and written
as a ``<string>`` is (Android's escaping, inline markup such as ``<b>`` and ``<xliff:g>``), its element staying an
``<item>``. Arrays marked ``translatable="false"``, and items that are resource references (``@string/name``,
``?attr/name``), are left as they are."""

from __future__ import annotations

import re
from typing import Any

from translate.storage import aresource

REFERENCE = re.compile(r"^\s*[@?][\w.:]*/?[\w.]+\s*$")  # @string/app_name, @android:string/ok, ?attr/colour


class ArrayItem(aresource.AndroidResourceUnit):
    """One ``<item>`` of a ``<string-array>``: the toolkit's writer renames the element it fills to
    ``<string>``; this one puts ``<item>`` back."""

    @property
    def target(self) -> Any:
        return aresource.AndroidResourceUnit.target.fget(self)  # type: ignore[attr-defined]

    @target.setter
    def target(self, value: Any) -> None:
        aresource.AndroidResourceUnit.target.fset(self, value)  # type: ignore[attr-defined]
        self.xmlelement.tag = "item"


def string_array_items(store: aresource.AndroidResourceFile) -> list[ArrayItem]:
    """The translatable items of the file's string arrays, in document order."""
    items = []
    for array in store.document.getroot().iter("string-array"):
        if array.get("translatable") == "false":
            continue
        for element in array.iter("item"):
            item = ArrayItem(None, xmlelement=element)
            text = item.source
            if text and text.strip() and not REFERENCE.match(text):
                items.append(item)
    return items
